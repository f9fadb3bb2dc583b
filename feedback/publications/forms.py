"""Forms of the publication review pages."""
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from feedback.publications.service import REASON_MAX, TEXT_MAX


class PublicTextForm(FlaskForm):
    public_text = TextAreaField("公示内容", validators=[
        DataRequired("请填写公示内容"), Length(max=TEXT_MAX, message=f"公示内容不能超过 {TEXT_MAX} 个字")],
        render_kw={"rows": 8})


class NotPersonalForm(FlaskForm):
    reason = StringField("不是个人信息的理由", validators=[
        DataRequired("请说明为什么这不是个人信息"), Length(max=REASON_MAX, message=f"不能超过 {REASON_MAX} 个字")])


class WithdrawForm(FlaskForm):
    reason = TextAreaField("撤回原因（仅内部可见，记入审计日志）", validators=[
        DataRequired("请填写撤回原因"), Length(max=REASON_MAX, message=f"不能超过 {REASON_MAX} 个字")],
        render_kw={"rows": 3})
