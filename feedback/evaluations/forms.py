"""Forms of the evaluations area: the supervisors' decision on a flagged rating, a new reason code."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from feedback.evaluations.levels import LEVELS


class FlagDecisionForm(FlaskForm):
    decision = RadioField("处理决定", choices=[("keep", "保留（清除标记）"), ("invalidate", "认定无效")],
                          validators=[DataRequired(message="请选择处理决定")])
    reason = TextAreaField("理由（认定无效时必填）", validators=[Optional(), Length(max=200)])


class ReasonCodeForm(FlaskForm):
    # Text fields checked here and in reasons.add_code: every message is Chinese (WTForms'
    # own coercion errors are English).
    level = SelectField("评价等级", choices=[(str(lv.value), f"{lv.value} {lv.label}") for lv in LEVELS.values()],
                        validate_choice=False, validators=[DataRequired(message="请选择评价等级")])
    code = StringField("代码", validators=[DataRequired(message="请填写代码（三位数字）"),
                                         Regexp(r"^\s*\d{3}\s*$", message="代码必须是三位数字，如 116")])
    label = StringField("指标名称", validators=[DataRequired(message="请填写指标名称"),
                                            Length(max=100, message="指标名称不能超过 100 个字")])
