"""The public complaint form and the case lookup form.

Every check the complaints service makes on a field is also made here, so one submit lists
every problem at once (the service still checks again: the API and SMS do not use this form).
"""
from datetime import datetime

from flask_wtf import FlaskForm
from wtforms import MultipleFileField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from feedback.clock import local_zone
from feedback.complaints.service import DESCRIPTION_MAX, description_problem, occurred_at_problem
from feedback.contact import normalise_phone
from feedback.errors import DomainError
from feedback.long_lists import searchable


def _meaningful(form, field) -> None:
    """The complaints service's own rule (the same for the form, the API and SMS)."""
    problem = description_problem(field.data)
    if problem is not None:
        raise ValidationError(problem)


def _valid_phone(form, field) -> None:
    if (field.data or "").strip():
        try:
            normalise_phone(field.data)
        except DomainError as exc:
            raise ValidationError(exc.message)


def parse_local(text: str) -> datetime:
    """A datetime-local value (Asia/Shanghai when it names no zone); ValueError when unreadable."""
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=local_zone())


def _valid_moment(form, field) -> None:
    if not (field.data or "").strip():
        return  # DataRequired says so
    try:
        moment = parse_local(field.data)
    except ValueError:
        raise ValidationError("发生时间格式不正确，请重新选择")
    problem = occurred_at_problem(moment)
    if problem is not None:
        raise ValidationError(problem)


def _optional_int(value):
    return int(value) if value not in (None, "", "None") and str(value).isdigit() else None


class ComplaintForm(FlaskForm):
    # No maxlength on the text area: a browser would cut a pasted text silently. The page
    # counts instead, and the server refuses (never cuts) a text over DESCRIPTION_MAX.
    description = TextAreaField("发生了什么", validators=[DataRequired("请描述发生了什么"), _meaningful],
                                render_kw={"rows": 6, "data-max": DESCRIPTION_MAX,
                                           "aria-describedby": "description-count"})
    department = SelectField("涉及部门", coerce=_optional_int, validate_choice=False, render_kw=searchable("部门名称"))
    hall = SelectField("办事大厅", coerce=_optional_int, validate_choice=False, render_kw=searchable("大厅名称"))
    window = SelectField("窗口", coerce=_optional_int, validate_choice=False, render_kw=searchable("窗口名称"))
    location_text = StringField("其他地点说明（选填）", validators=[Optional(), Length(max=200, message="最多 200 个字")])
    # A datetime-local input checked here, so its errors are ours (and Chinese).
    occurred_at = StringField("发生时间", render_kw={"type": "datetime-local"},
                              validators=[DataRequired("请填写发生时间（大概即可）"), _valid_moment])
    contact_phone = TelField("联系电话", render_kw={"autocomplete": "tel", "inputmode": "tel"},
                             validators=[DataRequired("请填写联系电话，以便回访和答复"),
                                         Length(max=30, message="电话号码过长"), _valid_phone])
    contact_name = StringField("称呼（选填）", validators=[Optional(), Length(max=100, message="最多 100 个字")])
    photos = MultipleFileField("照片（选填）")


class LookupForm(FlaskForm):
    case_number = StringField("投诉编号", validators=[DataRequired("请填写投诉编号"), Length(max=32)])
    secret = StringField("查询码", validators=[DataRequired("请填写查询码"), Length(max=32)])
