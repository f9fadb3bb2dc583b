"""Forms of the monthly bulletin pages (/console/reports)."""
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class GenerateForm(FlaskForm):
    """Which month, for the city or one department (and those below it)."""

    month = StringField("月份", validators=[DataRequired("请选择月份"), Length(max=7, message="月份格式应为 YYYY-MM")],
                        render_kw={"type": "month"})
    department = StringField("部门编码（留空为全市）", validators=[Length(max=40, message="部门编码不能超过 40 个字符")])


class CasesForm(FlaskForm):
    """The chosen typical cases arrive as repeated ``case`` values (publication ids), read in the view."""


class SignForm(FlaskForm):
    """签发: a button; the CSRF token is the whole form."""


class RegenerateForm(FlaskForm):
    """Regenerate a draft from the current statistics: a button."""
