"""Every rate is numerator / denominator over one cohort: the same ratings, records or tickets,
the same month rule, the same unit; so none can pass 100 %, whatever a tablet, a 转办 or a late
invalidation does."""
from __future__ import annotations

from datetime import datetime, timezone

from feedback.evaluations import service as ratings
from feedback.statistics import service as stats
from feedback.statistics.definitions import ALL_RATES as RATES, COUNTER_DEFS
from feedback.statistics.models import COUNTERS, STORED_COUNTERS
from feedback.tickets import closing
from feedback.tickets import service as tickets
from tests.public.helpers import work

UTC = timezone.utc
NOV = "2026-11"


def refresh(db) -> None:
    db.session.commit()
    stats.refresh()
    db.session.commit()


def unit(kind: str, unit_id: int, month: str = NOV) -> stats.Rates:
    return stats.totals(kind, [month]).get(unit_id) or stats.Rates(dict.fromkeys(COUNTERS, 0))


def assert_refresh_equals_recompute(db) -> None:
    incremental = stats.stored_rows()
    stats.recompute_all()
    db.session.commit()
    assert incremental == stats.stored_rows()


def test_every_rate_divides_two_counters_of_one_cohort():
    assert set(COUNTER_DEFS) == set(STORED_COUNTERS), "every defined counter is a column of stat_monthly"
    for rate in RATES:
        assert COUNTER_DEFS[rate.num].cohort is COUNTER_DEFS[rate.den].cohort, rate.attr


def test_anonymous_walk_in_ratings_count_in_good_and_bad_rates_but_never_push_the_active_rate_over_100_percent(
        db, city, clock, make_record, make_evaluation):
    make_evaluation(level=5)  # a record at W01, rated actively at the tablet
    make_record()  # a record at W01 nobody rated (yet)
    for level in (5, 4, 1):  # a busy tablet: walk-ins with no record
        make_evaluation(level=level, record=None)
    refresh(db)
    for kind, unit_id in (("window", city.window.id), ("hall", city.hall.id), ("department", city.child.id),
                          ("department_tree", city.parent.id), ("all", 0)):
        rates = unit(kind, unit_id)
        # Before: 4 active ratings over 2 records, 200 %.
        assert rates.active_rate == 0.5, (kind, rates.counts)
        assert (rates.counts["records"], rates.counts["records_active"]) == (2, 1)
        assert (rates.counts["ratings"], rates.good_rate, rates.bad_rate) == (4, 0.75, 0.25)
        assert rates.active_good_rate == 0.75  # the walk-ins are active ratings too
    assert_refresh_equals_recompute(db)


def test_a_record_rated_in_the_next_month_counts_as_actively_rated_in_the_month_it_was_completed(
        db, city, clock, make_record, make_evaluation):
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    record = make_record(completed_at=datetime(2026, 10, 31, 15, 50, tzinfo=UTC))  # 23:50, 31 October (Beijing)
    refresh(db)
    assert unit("window", city.window.id, "2026-10").active_rate == 0.0
    make_evaluation(level=4, channel="sms", record=record)  # the SMS reply comes on 2 November
    refresh(db)  # the rating marks October (its record's month) as well as November
    october, november = unit("window", city.window.id, "2026-10"), unit("window", city.window.id, NOV)
    assert october.active_rate == 1.0  # before: 0 % in October, and 1 active rating over 0 records in November
    assert (october.counts["records"], october.counts["ratings"]) == (1, 0)
    assert (november.counts["records"], november.counts["ratings"], november.active_rate) == (0, 1, None)
    assert november.good_rate == 1.0
    assert_refresh_equals_recompute(db)


def test_a_moved_ticket_counts_for_the_department_that_holds_it_in_numerator_and_denominator(
        db, city, clock, make_ticket):
    boss = city.users.supervisor
    moved = [make_ticket(), make_ticket()]  # bad reviews of 户政支队 (W01), real name
    own = make_ticket(window=city.other_window)  # a bad review of 市场监管局 (W02)
    for ticket in moved:
        tickets.move(ticket, boss, city.other, note="属市场监管局职责")
    for ticket in (*moved, own):
        work(clock, ticket, boss, until="replied")
    refresh(db)
    scj, hz = unit("department", city.other.id), unit("department", city.child.id)
    # Before: 市场监管局 3 replied over its 1 bad review (300 %); 户政支队 0 replied over 2.
    assert scj.bad_reply_rate == 1.0
    assert scj.rectify_rate == 1.0
    assert (scj.counts["bad_tickets"], scj.counts["bad_replied"], scj.counts["bad"]) == (3, 3, 1)
    assert (hz.counts["bad"], hz.counts["bad_tickets"], hz.bad_reply_rate) == (2, 0, None)  # the reviews stay its own
    # The hall, window and staff member named by a ticket keep it whoever holds it.
    w01 = unit("window", city.window.id)
    assert (w01.counts["bad_tickets"], w01.counts["bad_replied"]) == (2, 2)
    assert unit("all", 0).bad_reply_rate == 1.0
    assert_refresh_equals_recompute(db)


def test_a_complaint_naming_a_window_or_a_hall_counts_for_them(db, city, clock, make_ticket):
    boss = city.users.supervisor
    at_window = make_ticket(source="complaint", window=city.other_window)
    in_hall = make_ticket(source="complaint", department=city.other, hall_id=city.hall.id)
    for ticket in (at_window, in_hall):
        work(clock, ticket, boss, verdict="satisfied")
    refresh(db)
    w02, hall = unit("window", city.other_window.id), unit("hall", city.hall.id)
    # Before: complaint tickets counted for no hall and no window.
    assert (w02.counts["tickets"], w02.counts["tickets_closed"], w02.counts["handling_satisfied"]) == (1, 1, 1)
    assert (hall.counts["tickets"], hall.handling_satisfaction_rate, hall.on_time_rate) == (2, 1.0, 1.0)
    assert unit("window", city.window.id).counts["tickets"] == 0
    assert (w02.counts["bad_tickets"], w02.bad_reply_rate) == (0, None)  # a complaint is not a bad review
    assert_refresh_equals_recompute(db)


def test_a_rating_invalidated_later_leaves_every_month_it_counted_in(db, city, clock, make_record):
    # A tablet's queued rating: tapped at 23:58 on 31 October (Beijing), delivered after midnight:
    # the rating counts in October, its ticket opened in November.
    clock.set(datetime(2026, 10, 31, 16, 5, tzinfo=UTC))
    record = make_record(completed_at=datetime(2026, 10, 31, 15, 50, tzinfo=UTC), citizen_phone="13800138000")
    evaluation = ratings.rate(record=record, level=1, channel="hall_tablet", reasons=[115], comment="态度很差",
                              rated_at=datetime(2026, 10, 31, 15, 58, tzinfo=UTC))
    refresh(db)
    assert unit("department", city.child.id, "2026-10").counts["bad"] == 1
    assert unit("department", city.child.id, NOV).counts["tickets"] == 1
    # In December the fraud review finds the rating invalid.
    clock.set(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    evaluation.flagged, evaluation.flag_reason = True, "同一终端 1 分钟内评价 12 次"
    db.session.commit()
    ratings.decide_flag(evaluation, "invalidate", actor=city.users.supervisor, reason="核查认定为刷评")
    refresh(db)
    for month in ("2026-10", NOV):
        for kind, unit_id in (("department", city.child.id), ("window", city.window.id), ("all", 0)):
            counts = unit(kind, unit_id, month).counts
            # Before: November kept the ticket (only October, the rating's month, was recomputed).
            assert (counts["ratings"], counts["bad"], counts["tickets"]) == (0, 0, 0), (month, kind)
            assert counts.get("bad_tickets", 0) == 0
    assert unit("window", city.window.id, "2026-10").counts["records"] == 1  # the record itself still counts
    assert_refresh_equals_recompute(db)


def test_a_department_has_its_own_figures_and_figures_rolled_up_over_the_departments_below_it(
        db, city, clock, make_item, make_record, make_evaluation):
    own_item = make_item(code="IT-GA", name="出入境证件", department=city.parent)
    db.session.commit()
    make_evaluation(level=2, window=None, item=own_item, staff=None)  # 市公安局's own record, no window
    for level in (5, 4):
        make_evaluation(level=level)  # 户政支队 (below 市公安局) at W01
    make_evaluation(level=5, window=city.other_window)  # 市场监管局, a top department of its own
    refresh(db)
    ga_own, ga_tree = unit("department", city.parent.id), unit("department_tree", city.parent.id)
    assert (ga_own.counts["ratings"], ga_own.counts["bad"]) == (1, 1)
    assert (ga_tree.counts["ratings"], ga_tree.counts["bad"], ga_tree.counts["records"]) == (3, 1, 3)
    assert ga_tree.good_rate == 2 / 3
    assert ga_tree.counts["bad_tickets"] == 1
    assert unit("department_tree", city.child.id).counts == unit("department", city.child.id).counts
    assert unit("department_tree", city.other.id).counts["ratings"] == 1
    assert_refresh_equals_recompute(db)


def test_moving_a_department_in_the_tree_recomputes_its_rolled_up_figures(db, city, clock, make_evaluation):
    make_evaluation(level=5, window=city.other_window)  # 市场监管局
    refresh(db)
    assert unit("department_tree", city.parent.id).counts["ratings"] == 0
    city.other.parent_id = city.parent.id  # 市场监管局 now sits under 市公安局 (a reorganisation)
    refresh(db)
    assert unit("department_tree", city.parent.id).counts["ratings"] == 1
    assert_refresh_equals_recompute(db)


def test_a_reply_the_citizen_never_rates_closes_as_unrated_and_stays_out_of_the_handling_satisfaction(
        db, city, clock, make_ticket):
    rated, unrated = make_ticket(), make_ticket()
    for ticket in (rated, unrated):
        work(clock, ticket, city.users.supervisor, until="replied")
    tickets.rate_handling(rated, "basically_satisfied", "link")
    db.session.commit()
    clock.set(datetime(2026, 12, 10, 2, 0, tzinfo=UTC))
    assert closing.close_unrated(clock.now)["closed"] == 1
    refresh(db)
    counts = unit("department", city.child.id).counts
    assert (counts["tickets_closed"], counts["tickets_on_time"]) == (2, 2)
    assert (counts["handling_rated"], counts["handling_satisfied"]) == (1, 1)
    assert_refresh_equals_recompute(db)
