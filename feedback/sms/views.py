"""Routes of the sms area."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sms", __name__)
bp.access = "Twilio-signed webhooks; admin SMS log"  # type: ignore[attr-defined]
