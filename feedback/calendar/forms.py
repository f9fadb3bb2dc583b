"""Forms of the working-day calendar admin page."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import TextInput

from feedback.calendar.models import HOLIDAY, KIND_LABELS, WORKDAY

_date_kw = {"format": "%Y-%m-%d", "widget": TextInput(),
            "render_kw": {"placeholder": "2027-01-01", "inputmode": "numeric", "autocomplete": "off"}}


class DayForm(FlaskForm):
    """One administrator entry: a date, 放假 or 调休上班, its name and source."""

    date = DateField("日期", validators=[DataRequired("请按 2027-01-01 的格式填写日期")], **_date_kw)
    kind = SelectField("类型", choices=[(HOLIDAY, KIND_LABELS[HOLIDAY]), (WORKDAY, KIND_LABELS[WORKDAY])])
    name = StringField("名称", validators=[DataRequired("请填写名称"), Length(max=60)],
                       render_kw={"placeholder": "如：国庆节、国庆节调休上班"})
    source = StringField("来源", validators=[Optional(), Length(max=200)],
                         render_kw={"placeholder": "如：国办发明电〔2026〕12号；留空为“管理员录入”"})


class ImportForm(FlaskForm):
    """The upload of a year's arrangement (CSV or JSON)."""

    file = FileField("安排文件（.csv 或 .json）", validators=[
        FileRequired("请选择文件"), FileAllowed(["csv", "json"], "只支持 .csv 和 .json 文件")])


class YearForm(FlaskForm):
    """The "officially entered in full" mark of a year, with the notice it follows."""

    year = IntegerField("年份", validators=[DataRequired("请填写年份"),
                                          NumberRange(2000, 2100, "年份应在 2000–2100 之间")])
    source = StringField("依据", validators=[DataRequired("请填写依据"), Length(max=200)],
                         render_kw={"placeholder": "如：国办发明电〔2026〕12号"})


class ExplainForm(FlaskForm):
    """A read-only what-if: the deadline of N working days from a creation moment."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    start = StringField("创建时间（北京时间）", validators=[DataRequired("请填写创建时间")],
                        render_kw={"placeholder": "2026-09-30 10:00"})
    days = IntegerField("工作日数", default=5, validators=[NumberRange(1, 365, "请填写 1–365 之间的整数")])
