"""Forms of the terminal area: pairing, issuing codes, 办结, flag decisions."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp


class PairForm(FlaskForm):
    window_code = StringField("窗口编码", validators=[DataRequired(message="请输入窗口编码"), Length(max=40)])
    code = StringField("配对码", validators=[DataRequired(message="请输入配对码"),
                                          Regexp(r"^\s*\d{8}\s*$", message="配对码是 8 位数字")])


class IssueForm(FlaskForm):
    window_id = SelectField("窗口", coerce=int, validators=[DataRequired(message="请选择窗口")])
    name = StringField("设备名称（选填）", validators=[Optional(), Length(max=100)])


class CounterForm(FlaskForm):
    window_id = SelectField("窗口", coerce=int, validators=[DataRequired(message="请选择窗口")])
    service_item_id = SelectField("服务事项", coerce=int, validators=[DataRequired(message="请选择服务事项")])
    citizen_kind = RadioField("办事人类型", choices=[("person", "个人"), ("company", "企业")], default="person")
    citizen_name = StringField("办事人姓名/企业名称（选填）", validators=[Optional(), Length(max=100)])
    citizen_phone = StringField("联系电话（选填，用于短信邀评）", validators=[Optional(), Length(max=40)])
    record_number = StringField("办件编号（选填，留空自动生成）", validators=[Optional(), Length(max=64)])


class FlagDecisionForm(FlaskForm):
    decision = RadioField("处理决定", choices=[("keep", "保留（清除标记）"), ("invalidate", "认定无效")],
                          validators=[DataRequired(message="请选择处理决定")])
    reason = TextAreaField("理由（认定无效时必填）", validators=[Optional(), Length(max=200)])
