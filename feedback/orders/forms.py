"""The forms of the 督办单 pages. They read what was posted; the rules (content required, a due
of 1–30 working days, the issuer's scope) are the service's, whose Chinese messages the page shows."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from feedback.tickets.forms import ChoiceIdField


class IssueForm(FlaskForm):
    """下发督办单: to a department (the new-order page) or on a ticket (its department)."""

    department_id = ChoiceIdField("责任部门")
    content = TextAreaField("督办内容")
    due_working_days = StringField("办理时限（工作日）")


class AnswerForm(FlaskForm):
    """The department's written answer (书面答复)."""

    text = TextAreaField("书面答复")


class WithdrawForm(FlaskForm):
    """撤回 with a reason."""

    reason = TextAreaField("撤回原因")
