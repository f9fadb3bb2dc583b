"""The job functions: thin wrappers around service functions."""
from __future__ import annotations

from datetime import datetime

from feedback.audit import service as audit
from feedback.calendar import overview
from feedback.deadlines import provisional
from feedback.deadlines import service as deadlines
from feedback.evaluations import automatic
from feedback.evaluations import service as evaluations
from feedback.exchange import pusher
from feedback.exchange import service as exchange
from feedback.idempotency import service as idempotency
from feedback.oversight import rechecks
from feedback.privacy import service as privacy
from feedback.reports import service as reports
from feedback.sms import sender
from feedback.sms import service as sms
from feedback.statistics import service as stats
from feedback.tickets import closing
from feedback.voice import outbound
from jobs.registry import job


@job("calendar_year_check", seconds=6 * 3600,
     description="from November, warn administrators when next year's working-day arrangement is missing")
def calendar_year_check(now: datetime) -> dict:
    """Record (and log) whether next year's official arrangement still needs to be entered."""
    missing = overview.next_year_missing(now)
    if missing is not None:
        audit.record("calendar.year_missing_warning", year=missing)
    return {"missing_year": missing}


@job("statistics_refresh", seconds=60,
     description="recompute the monthly statistics of every month changed since the last run")
def statistics_refresh(now: datetime) -> dict:
    """Bring the pre-aggregated statistics up to date (public pages read only those)."""
    return stats.refresh(now)


@job("flag_bursts", seconds=30,
     description="防刷评: flag the ratings stored since the last run that came in a suspicious burst "
                 "(one tablet, one number), within a minute of their arrival")
def flag_bursts(now: datetime) -> dict:
    """Apply the burst rules to new ratings (off the rating's request path since issue 22)."""
    return evaluations.flag_bursts(now)


@job("sms_send", seconds=15, external=True,
     description="send the due texts of the SMS outbox (retries, quiet hours, daily limit per number)")
def sms_send(now: datetime) -> dict:
    """Claim and send queued texts whose time has come (each claim and result commits)."""
    return sender.send_due(now)


@job("sms_invitations", seconds=60,
     description="queue one SMS rating invitation for each completed, unrated record with a phone")
def sms_invitations(now: datetime) -> dict:
    """Invite records completed SMS_INVITE_DELAY_MINUTES ago and not yet rated."""
    return sms.send_invitations(now)


@job("voice_outbound_queue", seconds=300,
     description="queue one outbound rating call for each record unrated VOICE_OUTBOUND_AFTER_HOURS after its SMS "
                 "invitation, of an opted-in or counter-marked number (off unless VOICE_OUTBOUND_CALLS)")
def voice_outbound_queue(now: datetime) -> dict:
    """Write the outbox rows of the rating calls that are due (one per record, ever)."""
    return outbound.queue_due(now)


@job("voice_outbound_calls", seconds=60, external=True,
     description="place the queued outbound rating calls through Twilio, in calling hours of working days only")
def voice_outbound_calls(now: datetime) -> dict:
    """Claim and place due rating calls (each claim and result commits)."""
    return outbound.place_due(now)


@job("deadline_sweep", seconds=60,
     description="reminders, overdue marks and escalations (预警/督办) of ticket deadlines, each once")
def deadline_sweep(now: datetime) -> dict:
    """Do every deadline step that has fallen due (see feedback/deadlines/service.py)."""
    return deadlines.sweep(now)


@job("close_unrated", seconds=600,
     description="close as 未评价 the replied tickets whose citizen has not rated the handling within "
                 "UNRATED_CLOSE_WORKING_DAYS working days")
def close_unrated(now: datetime) -> dict:
    """Close replied tickets left unrated (handling_rating stays empty; claimed once each)."""
    return closing.close_unrated(now)


@job("auto_rating", seconds=300,
     description="automatic 基本满意 (channel default) for records whose rating window closed unrated")
def auto_rating(now: datetime) -> dict:
    """Rate records left unrated after RATING_WINDOW_DAYS (AUTO_RATING_ENABLED)."""
    return automatic.auto_rate(now)


@job("contact_erasure", seconds=3600,
     description="erase every copy of citizens' contact data (records, complaints, photos, tickets, "
                 "SMS log) CONTACT_RETENTION_DAYS after their ticket closed")
def contact_erasure(now: datetime) -> dict:
    """Erase contact data and the citizen's texts past the retention period (statistics kept)."""
    return privacy.erase_contacts(now)


@job("provisional_deadlines", seconds=600,
     description="recompute provisional deadlines once their year's working-day arrangement is entered")
def provisional_deadlines(now: datetime) -> dict:
    """Replace deadlines computed without official calendar data (recorded on the timeline)."""
    return provisional.recompute_provisional(now)


@job("idempotency_prune", seconds=3600,
     description="delete answered-write records (Idempotency-Key replays) older than IDEMPOTENCY_RETENTION_DAYS")
def idempotency_prune(now: datetime) -> dict:
    """Keep the idempotency table to the retry horizon of clients and tablets."""
    return idempotency.prune(now)


@job("exchange_push", seconds=30, external=True,
     description="report the exchange ledger to the provincial platform: bad ratings first, the rest in "
                 "batches of EXCHANGE_BATCH_SIZE, retries with back-off")
def exchange_push(now: datetime) -> dict:
    """Push what is due through the configured adapter (each batch claims and commits)."""
    return pusher.push(now)


@job("exchange_reconcile", seconds=3600,
     description="对账: compare yesterday's local counts with what the province acknowledged; "
                 "warn the administrators when they differ")
def exchange_reconcile(now: datetime) -> dict:
    """Reconcile the previous local day once (a later run the same day does nothing)."""
    return exchange.reconcile_yesterday(now)


@job("monthly_report_draft", seconds=3600,
     description="on the first working day of each month, prepare the draft of last month's 通报 and tell "
                 "the supervisors (once)")
def monthly_report_draft(now: datetime) -> dict:
    """Prepare last month's city bulletin on the month's first working day (see reports.service)."""
    return reports.prepare_monthly_draft(now)


@job("recheck_draw", seconds=3600,
     description="抽查回访: once per ISO week, draw RECHECK_SHARE of each department's real-name bad-review "
                 "tickets closed the week before (at least 1 each) into the bureau's re-check queue")
def recheck_draw(now: datetime) -> dict:
    """Draw last week's re-checks if not drawn yet (runs hourly; a drawn week is left as it is)."""
    made, new = rechecks.draw(now)
    return {"week": made.week, "new": new, "eligible": made.eligible, "drawn": made.drawn}
