"""Forms of the 约谈 and 抽查回访 pages (CSRF through Flask-WTF)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, RadioField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from feedback.oversight.rechecks import DEFAULT_ORDER_CONTENT, NOTE_MAX, ORDER_CONTENT_MAX
from feedback.oversight.talks import AGREED_MAX, ATTENDEES_MAX


class TalkForm(FlaskForm):
    """Record the 约谈 of one flagged unit (``unit`` is kind:id, ``month`` the flag month)."""

    unit = HiddenField(validators=[DataRequired("请选择需要约谈的单位")])
    month = HiddenField(validators=[DataRequired("请选择月份")])
    talk_date = DateField("约谈日期", validators=[InputRequired("请填写约谈日期")],
                          render_kw={"type": "date"})
    attendees = TextAreaField("参加人员", validators=[
        DataRequired("请填写参加人员"), Length(max=ATTENDEES_MAX, message=f"参加人员不能超过 {ATTENDEES_MAX} 个字")],
        render_kw={"rows": 2, "placeholder": "如：督查局 李局长；户政支队 张支队长"})
    agreed = TextAreaField("约谈议定事项", validators=[
        DataRequired("请填写约谈议定事项"), Length(max=AGREED_MAX, message=f"议定事项不能超过 {AGREED_MAX} 个字")],
        render_kw={"rows": 4})
    follow_up_on = DateField("跟进日期", validators=[InputRequired("请填写跟进日期")], render_kw={"type": "date"})


class RecheckForm(FlaskForm):
    """The bureau's own callback of a drawn ticket."""

    reached = RadioField("是否联系上群众", choices=[("yes", "已联系上"), ("no", "未联系上")],
                         validators=[InputRequired("请选择是否联系上群众")])
    confirmed = RadioField("群众是否认可部门的回访核实和整改情况",
                           choices=[("yes", "认可（部门说法属实）"), ("no", "不认可（部门说法不属实）")],
                           validators=[Optional()])
    note = TextAreaField("回访情况说明", validators=[
        Length(max=NOTE_MAX, message=f"回访情况说明不能超过 {NOTE_MAX} 个字")], render_kw={"rows": 3})
    order_content = TextAreaField("督办要求（不认可时随督办单下发）", default=DEFAULT_ORDER_CONTENT, validators=[
        Length(max=ORDER_CONTENT_MAX, message=f"督办要求不能超过 {ORDER_CONTENT_MAX} 个字")], render_kw={"rows": 3})
    due_working_days = IntegerField("督办答复期限（工作日）", validators=[
        Optional(), NumberRange(min=1, max=30, message="督办答复期限应为 1 至 30 个工作日")],
        render_kw={"inputmode": "numeric"})


class EmptyForm(FlaskForm):
    """A button with its CSRF token only (显示完整号码)."""
