"""Imports every area's models so that Alembic and create_app see all tables."""
from feedback.accounts.models import ApiKey, User  # noqa: F401
from feedback.audit.models import AuditEvent  # noqa: F401
from feedback.directory.models import Department, DepartmentHead, Hall, ServiceItem, Staff, Window  # noqa: F401
from feedback.operations.models import JobRun, JobWatermark  # noqa: F401
from feedback.calendar.models import CalendarDay, CalendarYear  # noqa: F401
from feedback.evaluations.models import Evaluation, ServiceRecord  # noqa: F401
from feedback.idempotency.models import IdempotencyKey  # noqa: F401
from feedback.terminal.models import Terminal  # noqa: F401
from feedback.tickets.models import Ticket, TicketEvent  # noqa: F401
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsInvitation, SmsOptOut  # noqa: F401
from feedback.voice.models import VoiceCall, VoiceCallPreference, VoiceOutboundCall, VoiceRecording  # noqa: F401
from feedback.statistics.models import StatBreakdown, StatCell, StatChange, StatDirtyMonth, StatMonthly, StatState  # noqa: F401
from feedback.publications.models import Publication  # noqa: F401
from feedback.notifications.models import Notification  # noqa: F401
from feedback.exchange.models import ExchangeControl, ExchangeMessage, ExchangeReconciliation  # noqa: F401
from feedback.deadlines.models import TicketDeadlineStep  # noqa: F401
from feedback.reports.models import MonthlyReport  # noqa: F401
from feedback.oversight.models import Recheck, RecheckDraw, Talk  # noqa: F401
from feedback.orders.models import SupervisionOrder, SupervisionOrderCounter  # noqa: F401
import feedback.deadlines.service  # noqa: F401,E402  (keeps tickets' next deadline check current)
import feedback.statistics.service  # noqa: F401,E402  (registers the dirty-month flush listener)
