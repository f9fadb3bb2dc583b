"""Pre-aggregated monthly statistics, so public pages never scan the ratings."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from feedback.db_types import UTCDateTime
from feedback.evaluations.levels import CHANNELS
from feedback.extensions import db

# Every counter of StatMonthly; the rates of DOMAIN.md are ratios of these. What each one
# counts (its cohort, month and unit) is defined once, in definitions.py.
COUNTERS = (
    "records", "records_active", "ratings", "good", "bad", "level1", "level2", "level3", "level4", "level5",
    "score_sum", "active", "active_good", "tickets", "tickets_closed", "tickets_on_time", "bad_tickets",
    "bad_replied", "realname_bad", "realname_bad_rectified", "handling_rated", "handling_satisfied",
    "records_unrated", "realname_bad_verified_on_time",
)
# Counters of the console only (未评率, 回访及时率, migration 0020): left out of the open data.
INTERNAL_COUNTERS = ("records_unrated", "realname_bad_verified_on_time")
# The valid ratings of each channel (评价渠道, the breakdown of ``ratings``), one column each of
# StatMonthly (migration 0033), kept by the same refresh as COUNTERS; shown as the channel mix
# (breakdowns.totals), not as counters of their own.
CHANNEL_COUNTERS = tuple(f"channel_{code}" for code in CHANNELS)
STORED_COUNTERS = COUNTERS + CHANNEL_COUNTERS  # every counting column of StatMonthly


class StatMonthly(db.Model):
    """统计: the counts of one unit in one month.

    Units: ``all`` (the city, unit 0), ``department`` (the department's own figures, 本部门),
    ``department_tree`` (the department and every department below it, 含下级部门), ``hall``,
    ``window``, ``staff``, ``service_item``. Each counter belongs to one cohort (ratings by
    the month of the rating, records by the month of completion, tickets by the month the
    ticket opened), see definitions.py. Invalid ratings are excluded everywhere.
    """

    __tablename__ = "stat_monthly"
    __table_args__ = (UniqueConstraint("unit_kind", "unit_id", "month", name="uq_stat_monthly_unit_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_kind: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(Integer)  # 0 for "all"
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, local
    records: Mapped[int] = mapped_column(Integer, default=0)
    records_active: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # migration 0013
    ratings: Mapped[int] = mapped_column(Integer, default=0)
    good: Mapped[int] = mapped_column(Integer, default=0)
    bad: Mapped[int] = mapped_column(Integer, default=0)
    level1: Mapped[int] = mapped_column(Integer, default=0)
    level2: Mapped[int] = mapped_column(Integer, default=0)
    level3: Mapped[int] = mapped_column(Integer, default=0)
    level4: Mapped[int] = mapped_column(Integer, default=0)
    level5: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[int] = mapped_column(Integer, default=0)
    active_good: Mapped[int] = mapped_column(Integer, default=0)
    bad_tickets: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # migration 0013
    bad_replied: Mapped[int] = mapped_column(Integer, default=0)
    realname_bad: Mapped[int] = mapped_column(Integer, default=0)
    realname_bad_rectified: Mapped[int] = mapped_column(Integer, default=0)
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    tickets_closed: Mapped[int] = mapped_column(Integer, default=0)
    tickets_on_time: Mapped[int] = mapped_column(Integer, default=0)
    handling_rated: Mapped[int] = mapped_column(Integer, default=0)
    handling_satisfied: Mapped[int] = mapped_column(Integer, default=0)
    records_unrated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # migration 0020
    realname_bad_verified_on_time: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0020
    # Valid ratings per channel (CHANNEL_COUNTERS, migration 0033).
    channel_pc: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_mobile: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_qr: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_hall_tablet: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_hall_terminal: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_phone: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_sms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_default: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatBreakdown(db.Model):
    """统计分布: how one unit's valid ratings of one month divide by a dimension.

    ``dimension`` "reason" (the channel split lives in StatMonthly's CHANNEL_COUNTERS since
    migration 0033): every valid bad rating (差评) by each reason code it cites (``key`` the code; a
    rating citing two reasons counts once under each). Units as in StatMonthly (the ratings
    cohort: all, department, department_tree rolled up over the tree, hall, window, staff,
    service_item). Filled by the same refresh and recompute as StatMonthly (breakdowns.py).
    """

    __tablename__ = "stat_breakdowns"
    __table_args__ = (UniqueConstraint("month", "unit_kind", "unit_id", "dimension", "key",
                                       name="uq_stat_breakdowns_unit_month_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_kind: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(Integer)  # 0 for "all"
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, local
    dimension: Mapped[str] = mapped_column(String(20))  # reason (channel before migration 0033)
    key: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(Integer, default=0)


class StatState(db.Model):
    """The refresh watermark: changes after ``refreshed_until`` are not yet in StatMonthly."""

    __tablename__ = "stat_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    refreshed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_recompute_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when StatOverdue was taken
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # +1 whenever StatMonthly changes


class StatOverdue(db.Model):
    """当前超期工单: open tickets past their deadline per department, as of StatState.overdue_at.

    Taken by every statistics refresh (each minute), so the public pages read at most one row
    per department instead of counting open tickets live, however many there are.
    """

    __tablename__ = "stat_overdue"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int | None] = mapped_column(Integer)  # None: not yet assigned (待分办)
    count: Mapped[int] = mapped_column(Integer)


class StatDirtyMonth(db.Model):
    """A month whose statistics changed in some transaction and await the refresh job.

    Written by a flush listener in the same transaction as the change (a rating, an
    invalidation, a ticket step), so no change can be missed; the refresh removes the
    markers it has processed.
    """

    __tablename__ = "stat_dirty_months"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))


class StatChange(db.Model):
    """A change the next statistics refresh applies (incremental statistics, service.py).

    Written by a flush listener in the same transaction as the change, one multi-row INSERT
    per flush, append-only (no unique key, so concurrent writers never wait on each other;
    the refresh reads what is committed and deletes exactly the rows it read):

    * ``row_id`` set: a row of ``cohort`` inserted (a rating, a record, a ticket), or, with
      cohort ``records_rated``, a record that received a new rating; the refresh adds what the
      row contributes now (old contribution zero, or the record's without its new ratings).
    * ``row_id`` None: a cell (``month``, ``cohort`` and the five unit ids, 0 for none) whose
      rows changed in place (an invalidation, a ticket step, a unit moved); the refresh
      recomputes that cell from the source rows and applies the difference.
    """

    __tablename__ = "stat_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    cohort: Mapped[str] = mapped_column(String(16))
    row_id: Mapped[int | None] = mapped_column(Integer)
    department_id: Mapped[int] = mapped_column(Integer, default=0)
    hall_id: Mapped[int] = mapped_column(Integer, default=0)
    window_id: Mapped[int] = mapped_column(Integer, default=0)
    staff_id: Mapped[int] = mapped_column(Integer, default=0)
    service_item_id: Mapped[int] = mapped_column(Integer, default=0)


class StatCell(db.Model):
    """The counts of one cell: the rows of one cohort in one month naming exactly one
    combination of department, hall, window, staff member and service item (0 for none).

    Every unit's row of StatMonthly and StatBreakdown is the sum of the cells naming it
    (departments summed up the tree), so a refresh that recomputes a few cells, or adds a
    few new rows to them, applies the difference to the units of those cells only.
    ``counts`` holds the nonzero counters (for ratings the CHANNEL_COUNTERS too) and, for
    ratings, the ``reason:CODE`` breakdown counts.
    """

    __tablename__ = "stat_cells"
    __table_args__ = (UniqueConstraint("month", "cohort", "department_id", "hall_id", "window_id", "staff_id",
                                       "service_item_id", name="uq_stat_cells_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    cohort: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int] = mapped_column(Integer)
    hall_id: Mapped[int] = mapped_column(Integer)
    window_id: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int] = mapped_column(Integer)
    service_item_id: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


# Indexes the monthly GROUP BYs need on other areas' tables (time-range scans).
from sqlalchemy import Index  # noqa: E402

from feedback.evaluations.models import Evaluation  # noqa: E402
from feedback.tickets.models import Ticket  # noqa: E402

Index("ix_stat_evaluations_rated_at", Evaluation.rated_at)
Index("ix_stat_tickets_created_at", Ticket.created_at)
Index("ix_stat_tickets_dept_created", Ticket.department_id, Ticket.created_at)  # a cell's tickets (0026)
