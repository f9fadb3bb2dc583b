"""Property: whatever happens, the statistics are right by construction.

Hypothesis drives random histories through the real services (records, real-name and
anonymous ratings of every channel, automatic ratings, complaints naming a department, a
window, a hall or nothing, every ticket step: moves, extensions, appeals upheld and rejected,
the citizen's verdicts, rework, closes; fraud-review invalidations; refreshes at random
moments; the clock crossing month boundaries) and checks, for every unit kind and month:

* every rate lies between 0 and 1 (its numerator never exceeds its denominator);
* the rows the refresh kept current equal a full recomputation;
* the city's row is the sum of its units where the counter is additive: departments (a
  complaint still in triage belongs to no department), the tree's top departments summed
  over their subtrees, and no more in any hall, window, staff member or service item.

The app and the city are made once per backend; each example runs in one transaction that is
rolled back afterwards (every action in a savepoint, so a refused action leaves nothing).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from feedback.complaints import service as complaints
from feedback.errors import DomainError
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import CHANNELS
from feedback.directory.models import ServiceItem
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.statistics import breakdowns
from feedback.statistics import service as stats
from feedback.statistics.definitions import ALL_RATES as RATES, COUNTER_DEFS, TICKETS
from feedback.statistics.models import CHANNEL_COUNTERS, COUNTERS, StatCell, StatState
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket

UTC = timezone.utc
START = datetime(2026, 10, 26, 1, 0, tzinfo=UTC)  # Monday 26 October, 09:00 Beijing
STEPS = ("accept", "verify", "rectify", "reply", "satisfied", "basically_satisfied", "dissatisfied", "close",
         "rework", "review_close", "extend", "appeal", "uphold", "reject", "move")
INDEX = st.integers(0, 60)
ACTION = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 2), st.booleans()),  # window W01 / W02 / none; a phone or not
    st.tuples(st.just("rate"), INDEX, st.integers(1, 5), st.sampled_from(sorted(CHANNELS)),
              st.sampled_from([0, 0, 5, 90, 24 * 60])),  # minutes the rating was given before it arrived
    st.tuples(st.just("walk_in"), st.integers(0, 1), st.integers(1, 5), st.sampled_from(sorted(CHANNELS))),
    st.tuples(st.just("default"), INDEX),
    st.tuples(st.just("complaint"), st.integers(0, 3)),  # department / window / hall / triage
    st.tuples(st.just("ticket"), INDEX, st.sampled_from(STEPS), st.integers(0, 2)),
    st.tuples(st.just("ticket"), INDEX, st.sampled_from(STEPS), st.integers(0, 2)),
    st.tuples(st.just("invalidate"), INDEX),
    st.tuples(st.just("refresh")),
    st.tuples(st.just("refresh")),
    # Changes in place that move a row between cells (a data correction by an administrator):
    # a rating's level, reasons and window; a record's completion month and window.
    st.tuples(st.just("edit_rating"), INDEX, st.integers(1, 5), st.integers(0, 1),
              st.sampled_from([[], [101], [101, 102]])),
    st.tuples(st.just("edit_record"), INDEX, st.sampled_from([0, -40 * 24 * 60, -3 * 24 * 60]), st.integers(0, 1)),
)
ADVANCE = st.one_of(st.integers(0, 90), st.integers(0, 5 * 24 * 60))  # minutes until the next action
HISTORY = st.lists(st.tuples(ACTION, ADVANCE), min_size=1, max_size=24)


class World:
    """The city of the root fixtures and the objects each action picks from."""

    def __init__(self, db, city, clock, ga_item):
        self.db, self.city, self.clock, self.ga_item = db, city, clock, ga_item
        self.windows = [city.window, city.other_window, None]
        self.departments = [city.child, city.other, city.parent]

    def pick(self, model, index: int, *where):
        rows = self.db.session.scalars(select(model).where(*where).order_by(model.id)).all()
        return rows[index % len(rows)] if rows else None

    def handler_of(self, ticket: Ticket):
        users = self.city.users
        if ticket.department_id in (self.city.parent.id, self.city.child.id):
            return users.handler
        return users.other if ticket.department_id == self.city.other.id else users.supervisor

    def do(self, action: tuple, n: int, now: datetime) -> None:
        """Run one action through the services (a DomainError is a refusal, as for a user)."""
        city, boss, kind = self.city, self.city.users.supervisor, action[0]
        if kind == "record":
            window = self.windows[action[1]]
            item = city.item if window is city.window else city.other_item if window else self.ga_item
            ratings.create_record(record_number=f"P{n}", service_item_code=item.code,
                                  window_code=window.code if window else None,
                                  staff_number=(city.staff if window is city.window else city.other_staff).staff_number
                                  if window else None,
                                  completed_at=now - timedelta(minutes=3),
                                  citizen_phone="13800138000" if action[2] else None, now=now)
        elif kind == "rate":
            record = self.pick(ServiceRecord, action[1])
            if record is not None:
                rated_at = max(record.completed_at, now - timedelta(minutes=action[4]))
                ratings.rate(record=record, level=action[2], channel=action[3], rated_at=rated_at, now=now)
        elif kind == "walk_in":
            ratings.rate(record=None, level=action[2], channel=action[3], window=self.windows[action[1]], now=now)
        elif kind == "default":
            record = self.pick(ServiceRecord, action[1])
            if record is not None and ratings.rating_deadline(record) <= now:
                ratings.give_default_rating(record, now)
        elif kind == "complaint":
            where = [{"department_id": city.child.id}, {"window_id": city.other_window.id},
                     {"department_id": city.other.id, "hall_id": city.hall.id}, {}][action[1]]
            complaints.create_complaint(description="窗口工作人员要求提供办事指南以外的材料", contact_phone="13900139000",
                                        occurred_at=now - timedelta(hours=1), now=now, **where)
        elif kind == "invalidate":
            evaluation = self.pick(Evaluation, action[1], Evaluation.invalid.is_(False))
            if evaluation is not None:
                evaluation.flagged = True
                ratings.decide_flag(evaluation, "invalidate", actor=boss, reason="核查认定为刷评", now=now)
        elif kind == "refresh":
            stats.refresh(now)
        elif kind == "edit_rating":
            evaluation = self.pick(Evaluation, action[1])
            if evaluation is not None:
                window = self.windows[action[3]]
                evaluation.level, evaluation.reasons = action[2], action[4]
                evaluation.window_id, evaluation.hall_id = window.id, window.hall_id
                self.db.session.flush()
        elif kind == "edit_record":
            record = self.pick(ServiceRecord, action[1])
            if record is not None:
                window = self.windows[action[3]]
                record.completed_at = record.completed_at + timedelta(minutes=action[2])
                record.window_id, record.hall_id = window.id, window.hall_id
                self.db.session.flush()
        else:
            ticket = self.pick(Ticket, action[1])
            if ticket is not None:
                self.step(ticket, action[2], self.departments[action[3]], now)

    def step(self, ticket: Ticket, step: str, department, now: datetime) -> None:
        """One ticket transition, by the supervisor (an appeal by the department's handler)."""
        boss = self.city.users.supervisor
        if step == "accept":
            tickets.accept(ticket, boss, now=now)
        elif step == "verify":
            tickets.verify(ticket, boss, callback_at=None, contact="本人", reached=True, findings="情况属实", now=now)
        elif step == "rectify":
            tickets.rectify(ticket, boss, outcome="rectified", measures="已补充材料清单", now=now)
        elif step == "reply":
            tickets.reply(ticket, boss, text="已整改，感谢监督。", now=now)
        elif step in ("satisfied", "basically_satisfied", "dissatisfied"):
            tickets.rate_handling(ticket, step, "link", now=now)
        elif step == "close":
            tickets.close(ticket, boss, note="群众电话无人接听", now=now)
        elif step in ("rework", "review_close"):
            tickets.review(ticket, boss, decision="rework" if step == "rework" else "close", note="复核意见", now=now)
        elif step == "extend":
            tickets.extend(ticket, boss, reason="情况复杂，需要协调", now=now)
        elif step == "appeal":
            tickets.appeal(ticket, self.handler_of(ticket), reason="非本部门责任", now=now)
        elif step in ("uphold", "reject"):
            tickets.decide_appeal(ticket, boss, upheld=step == "uphold", note="审核意见", now=now)
        elif department.id != ticket.department_id:
            tickets.move(ticket, boss, department, note="转办", now=now)


def check_rates_are_fractions(rows: dict) -> None:
    for key, counts in rows.items():
        rates = stats.Rates(counts)
        for rate in RATES:
            num, den = counts[rate.num], counts[rate.den]
            limit = den if rate.kind == "pct" else 10 * den
            assert 0 <= num <= limit, (key, rate.attr, num, den)
            value = getattr(rates, rate.attr)
            assert value is None or 0 <= value <= (1 if rate.kind == "pct" else 10), (key, rate.attr, value)
        channels = sum(counts[c] for c in CHANNEL_COUNTERS)
        assert channels == counts["ratings"], (key, "the channel mix sums to the valid ratings", channels)


def check_city_is_the_sum_of_its_units(rows: dict, parents: dict, triage_months: set[str]) -> None:
    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for (kind, unit, month), counts in rows.items():
        if kind == "department_tree" and parents.get(unit) is not None:
            assert all(counts[c] >= rows.get(("department", unit, month), {}).get(c, 0) for c in COUNTERS)
            continue
        for c in COUNTERS:
            sums[(month, kind)][c] += counts[c]
    for month in {m for (_, _, m) in rows}:
        city = rows.get(("all", 0, month), dict.fromkeys(COUNTERS, 0))
        departments = sums[(month, "department")]
        for c in COUNTERS:
            if COUNTER_DEFS[c].cohort is TICKETS and month in triage_months:
                assert departments[c] <= city[c], (month, c)
            else:
                assert departments[c] == city[c], (month, c)
            assert sums[(month, "department_tree")][c] == departments[c], (month, c)  # the top departments' trees
            for kind in ("hall", "window", "staff", "service_item"):
                assert sums[(month, kind)][c] <= city[c], (month, kind, c)
            assert sums[(month, "window")][c] <= sums[(month, "hall")][c], (month, c)  # every window is in a hall


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=HISTORY)
def test_every_rate_is_a_fraction_refresh_equals_recompute_and_the_city_is_the_sum_of_its_units(
        db, city, clock, make_item, history):
    ga_item = ga_own_item(db, city, make_item)
    world = World(db, city, clock, ga_item)
    now = START
    note(f"history = {history!r}")
    # pysqlite begins its transaction only at the first write, and a SAVEPOINT outside a
    # transaction is released as a COMMIT: write once first, so the example stays in one
    # transaction that the rollback below undoes (PostgreSQL needs nothing).
    db.session.execute(update(StatState).where(StatState.id < 0).values(version=StatState.version))
    assert db.session.scalar(select(func.count()).select_from(Evaluation)) == 0, "an example left data behind"
    try:
        for n, (action, advance) in enumerate(history):
            now += timedelta(minutes=advance)
            clock.set(now)
            try:
                with db.session.begin_nested():
                    world.do(action, n, now)
            except DomainError:
                pass  # refused, as the console or the API would refuse it
        stats.refresh(now)
        incremental, split, kept = stats.stored_rows(), breakdowns.stored_rows(), stored_cells()
        stats.recompute_all(now)
        full = stats.stored_rows()
        differ = {k: (incremental.get(k), full.get(k)) for k in set(incremental) | set(full)
                  if incremental.get(k) != full.get(k)}
        assert not differ, ("incremental refresh differs from the full recomputation", sorted(differ.items())[:3])
        differ = {k: (split.get(k), v) for k, v in breakdowns.stored_rows().items() if split.get(k) != v}
        assert not differ and len(split) == len(breakdowns.stored_rows()), (
            "incremental breakdowns differ from the full recomputation", sorted(differ.items())[:3])
        assert kept == stored_cells(), "the cells kept by the refresh differ from the recomputed ones"
        for month in {m for (_, _, m) in full}:  # the stored rows against the GROUP BYs over the month
            computed = {(kind, unit, month): counts for (kind, unit), counts in stats.compute_month(month).items()}
            assert computed == {k: v for k, v in full.items() if k[2] == month}, month
        check_rates_are_fractions(full)
        parents = stats.department_parents()
        triage = {stats.month_of(m) for m in db.session.scalars(
            select(Ticket.created_at).where(Ticket.department_id.is_(None)))}
        check_city_is_the_sum_of_its_units(full, parents, triage)
    finally:
        db.session.rollback()



def stored_cells() -> dict:
    c = StatCell
    return {(r.month, r.cohort, r.department_id, r.hall_id, r.window_id, r.staff_id, r.service_item_id): r.counts
            for r in db_session().scalars(select(c))}


def db_session():
    from feedback.extensions import db
    return db.session


def ga_own_item(db, city, make_item) -> ServiceItem:
    """A service item of 市公安局 itself (a record with no window counts for it, not for the bureau
    below it), made by the first example (the examples roll back what they do, not this)."""
    item = db.session.scalar(select(ServiceItem).where(ServiceItem.code == "IT-GA"))
    if item is None:
        item = make_item(code="IT-GA", name="出入境证件", department=city.parent)
        db.session.commit()
    return item
