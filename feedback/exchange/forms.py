"""Forms of the exchange admin page (/admin/exchange)."""
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import TextInput

from feedback.exchange.models import KIND_LABELS, STATUS_LABELS

_date_kw = {"format": "%Y-%m-%d", "widget": TextInput(),
            "render_kw": {"placeholder": "2026-11-01", "inputmode": "numeric", "autocomplete": "off"}}
KIND_CHOICES = [("", "全部类型")] + list(KIND_LABELS.items())
STATUS_CHOICES = [("", "全部状态")] + [(k, v) for k, v in STATUS_LABELS.items() if k != "sending"]


class FilterForm(FlaskForm):
    """The filters of the day table and the message list (GET, no CSRF)."""

    class Meta:
        csrf = False

    date_from = DateField("开始日期", validators=[Optional()], **_date_kw)
    date_to = DateField("结束日期", validators=[Optional()], **_date_kw)
    kind = SelectField("类型", choices=KIND_CHOICES, validators=[Optional()])
    status = SelectField("状态", choices=STATUS_CHOICES, validators=[Optional()])
    q = StringField("消息编号或错误原因", validators=[Optional(), Length(max=60)])


class BackfillForm(FlaskForm):
    """补报: a date range and an optional kind."""

    date_from = DateField("开始日期", validators=[DataRequired("请按 2026-11-01 的格式填写开始日期")], **_date_kw)
    date_to = DateField("结束日期", validators=[DataRequired("请按 2026-11-30 的格式填写结束日期")], **_date_kw)
    kind = SelectField("类型", choices=KIND_CHOICES, validators=[Optional()])


class PauseForm(FlaskForm):
    """Pause (with a reason) or resume pushing."""

    reason = StringField("暂停原因", validators=[Optional(), Length(max=200, message="原因不超过 200 字")],
                         render_kw={"placeholder": "如：省平台停机维护"})


class RepushForm(FlaskForm):
    """Re-push the messages ticked in the list, or every message matching the filters."""

    date_from = DateField("开始日期", validators=[Optional()], **_date_kw)
    date_to = DateField("结束日期", validators=[Optional()], **_date_kw)
    kind = SelectField("类型", choices=KIND_CHOICES, validators=[Optional()])
    status = SelectField("状态", choices=STATUS_CHOICES, validators=[Optional()])
    q = StringField("消息编号或错误原因", validators=[Optional(), Length(max=60)])
