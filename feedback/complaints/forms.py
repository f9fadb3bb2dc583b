"""The public complaint form and the case lookup form."""
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from feedback.complaints.service import description_problem


def _meaningful(form, field) -> None:
    """The complaints service's own rule (the same for the form, the API and SMS)."""
    problem = description_problem(field.data)
    if problem is not None:
        raise ValidationError(problem)


def _optional_int(value):
    return int(value) if value not in (None, "", "None") and str(value).isdigit() else None


class ComplaintForm(FlaskForm):
    description = TextAreaField("发生了什么", validators=[DataRequired("请描述发生了什么"), _meaningful])
    department = SelectField("涉及部门", coerce=_optional_int, validate_choice=False)
    hall = SelectField("办事大厅", coerce=_optional_int, validate_choice=False)
    window = SelectField("窗口", coerce=_optional_int, validate_choice=False)
    location_text = StringField("其他地点说明（选填）", validators=[Optional(), Length(max=200, message="最多 200 个字")])
    # A datetime-local input parsed by the view, so its errors are ours (and Chinese).
    occurred_at = StringField("发生时间", render_kw={"type": "datetime-local"},
                              validators=[DataRequired("请填写发生时间（大概即可）")])
    contact_phone = TelField("联系电话", validators=[DataRequired("请填写联系电话，以便回访和答复"),
                                                 Length(max=30, message="电话号码过长")])
    contact_name = StringField("称呼（选填）", validators=[Optional(), Length(max=100, message="最多 100 个字")])
    photos = MultipleFileField("照片（选填）")


class LookupForm(FlaskForm):
    case_number = StringField("投诉编号", validators=[DataRequired("请填写投诉编号"), Length(max=32)])
    secret = StringField("查询码", validators=[DataRequired("请填写查询码"), Length(max=32)])
