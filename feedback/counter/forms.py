"""The 办结 form of window staff."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from feedback.long_lists import searchable


class CounterForm(FlaskForm):
    window_id = SelectField("窗口", coerce=int, validators=[DataRequired(message="请选择窗口")],
                            render_kw=searchable("窗口名称"))
    service_item_id = SelectField("服务事项", coerce=int, validators=[DataRequired(message="请选择服务事项")],
                                  render_kw=searchable("事项名称"))
    citizen_kind = RadioField("办事人类型", choices=[("person", "个人"), ("company", "企业")], default="person")
    citizen_name = StringField("办事人姓名/企业名称（选填）", validators=[Optional(), Length(max=100)])
    citizen_phone = StringField("联系电话（选填，用于短信邀评）", validators=[Optional(), Length(max=40)])
    prefers_call = BooleanField("老年人/不便短信，请电话邀请评价")
    record_number = StringField("办件编号（选填，留空自动生成）", validators=[Optional(), Length(max=64)])
