"""防刷评 in the flag_bursts job (issue 22): the burst rules run off the request path, every 30 s."""
from __future__ import annotations

from datetime import timedelta

from feedback.evaluations import service as ratings
from feedback.evaluations.models import Evaluation


def _rate_records_of_one_number(db, make_record, clock, n):
    evs = []
    for i in range(n):
        record = make_record(citizen_phone="13800138000", record_number=f"FJ{i:03d}")
        evs.append(ratings.rate(record=record, level=5, channel="sms", now=clock.now))
        db.session.commit()
    return [ev.id for ev in evs]


def test_one_number_rating_a_sixth_record_in_a_day_is_flagged_by_the_job_within_a_minute(db, make_record, clock):
    ids = _rate_records_of_one_number(db, make_record, clock, 6)
    assert not any(db.session.get(Evaluation, i).flagged for i in ids), "the request path no longer flags"
    result = ratings.flag_bursts(clock.now + timedelta(seconds=30))
    db.session.expire_all()
    flagged = [i for i in ids if db.session.get(Evaluation, i).flagged]
    assert flagged == ids[5:], f"only the sixth rating of the number is a burst, got {flagged} ({result})"
    assert "同一号码 1 天内评价 6 个办件" in db.session.get(Evaluation, ids[5]).flag_reason


def test_a_rating_still_settling_waits_for_the_next_run_and_a_kept_flag_stays_kept(db, city, make_record, clock):
    ids = _rate_records_of_one_number(db, make_record, clock, 6)
    # Stored 10 s before the run: it may still be committing, so the next run takes it.
    ratings.flag_bursts(clock.now + timedelta(seconds=10))
    db.session.expire_all()
    assert not db.session.get(Evaluation, ids[5]).flagged
    ratings.flag_bursts(clock.now + timedelta(seconds=40))
    db.session.expire_all()
    sixth = db.session.get(Evaluation, ids[5])
    assert sixth.flagged
    ratings.decide_flag(sixth, "keep", actor=city.users.supervisor, now=clock.now + timedelta(minutes=2))
    db.session.commit()
    ratings.flag_bursts(clock.now + timedelta(minutes=3))
    db.session.expire_all()
    assert db.session.get(Evaluation, ids[5]).flagged is False, "a run must not flag again what a supervisor kept"
