"""The forms of the ticket pages: one per console action, and the citizen's rating of the handling.

The forms read and type what was posted; the rules (a required text, a valid outcome, who
may be assigned) stay in the service, whose Chinese messages the page shows. Field names
are those of the hand-written forms in templates/tickets/detail.html.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, StringField, TextAreaField
from wtforms.validators import AnyOf

from feedback.calendar.days import parse_moment
from feedback.errors import DomainError


class MomentField(StringField):
    """A time typed in Beijing time (a datetime-local input): aware UTC, None when left empty."""

    def process_formdata(self, valuelist: list[str]) -> None:
        """Parse the posted text; one that is not a time becomes the field's Chinese error."""
        self.data = None
        text = valuelist[0].strip() if valuelist else ""
        if text:
            try:
                self.data = parse_moment(text)
            except DomainError as exc:
                raise ValueError(exc.message) from exc


class ChoiceIdField(IntegerField):
    """The id chosen in a <select>: None for the empty choice; anything but digits is refused."""

    def process_formdata(self, valuelist: list[str]) -> None:
        """Read the posted id (a crafted non-number gets a Chinese error, not an English one)."""
        self.data = None
        text = valuelist[0].strip() if valuelist else ""
        if text:
            if not text.isdigit():
                raise ValueError("请从列表中选择")
            self.data = int(text)


class NoteForm(FlaskForm):
    """签收, 办结 and 备注: a note (optional for 签收; the service says when it is required)."""

    note = TextAreaField(default="")


class VerifyForm(FlaskForm):
    """回访核实: when the citizen was called (empty: now), whom, whether reached, what was found."""

    callback_at = MomentField()
    contact = StringField(default="")
    reached = RadioField(choices=[("yes", "已联系上"), ("no", "未联系上")], default="yes", validate_choice=False)
    findings = TextAreaField(default="")


class RectifyForm(FlaskForm):
    """整改: the outcome chosen and the measures taken."""

    outcome = StringField(default="")
    measures = TextAreaField(default="")


class ReplyForm(FlaskForm):
    """答复: the text sent to the citizen by SMS."""

    text = TextAreaField(default="")


class ReasonForm(FlaskForm):
    """延期 and 申诉: the reason."""

    reason = TextAreaField(default="")


class ReviewForm(NoteForm):
    """督查复核 of a reopened ticket: 'rework' or 'close', and the opinion."""

    decision = StringField(default="")


class DecideAppealForm(NoteForm):
    """申诉审核: upheld or rejected, and the opinion."""

    decision = StringField(default="", validators=[AnyOf(("upheld", "rejected"),
                                                         "请选择审核结论：申诉成立 或 申诉不成立")])


class AssignForm(FlaskForm):
    """指派: the handler (empty: unassign)."""

    assignee_id = ChoiceIdField()


class MoveForm(NoteForm):
    """转办: the receiving department and why."""

    department_id = ChoiceIdField()


class HandlingRatingForm(FlaskForm):
    """The citizen's 满意 / 基本满意 / 不满意 on /h/<token>; ``via`` is 'lookup' from the case page."""

    verdict = StringField(default="")
    via = HiddenField(default="")
