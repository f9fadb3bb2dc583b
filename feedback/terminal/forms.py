"""Forms of the terminal area: pairing a tablet, issuing pairing codes."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from feedback.long_lists import searchable


class PairForm(FlaskForm):
    window_code = StringField("窗口编码", validators=[DataRequired(message="请输入窗口编码"), Length(max=40)])
    code = StringField("配对码", validators=[DataRequired(message="请输入配对码"),
                                          Regexp(r"^\s*\d{8}\s*$", message="配对码是 8 位数字")])


class IssueForm(FlaskForm):
    window_id = SelectField("窗口", coerce=int, validators=[DataRequired(message="请选择窗口")],
                            render_kw=searchable("窗口名称"))
    name = StringField("设备名称（选填）", validators=[Optional(), Length(max=100)])
