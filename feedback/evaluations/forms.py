"""Forms of the evaluations area: the supervisors' decision on a flagged rating."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class FlagDecisionForm(FlaskForm):
    decision = RadioField("处理决定", choices=[("keep", "保留（清除标记）"), ("invalidate", "认定无效")],
                          validators=[DataRequired(message="请选择处理决定")])
    reason = TextAreaField("理由（认定无效时必填）", validators=[Optional(), Length(max=200)])
