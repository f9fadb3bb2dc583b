"""The month's 红黑榜 (best and worst units by 好评率) for the public rankings page.

Read from the pre-aggregated ``stat_monthly`` rows only (a row per unit and month), so the
cost follows the number of units, never the number of ratings; the ranks are cached until
the statistics refresh stores new rows. Units with fewer than RANKING_MIN_RATINGS ratings
in the month are listed as 样本不足, not ranked.

末位 (DOMAIN.md): the ranked units tied with the worst one (the same 好评率 and the same
平均分; the code only orders the display), ties included. A unit 末位 in two consecutive
months is flagged for a 约谈 (talk with its head); being on the 黑榜 twice is not enough.
With fewer than two ranked units, or all of them tied, nobody is behind anybody: no 末位.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import BigInteger, cast, func, select

from feedback.extensions import db
from feedback.statistics.watermark import by_watermark
from feedback.public.statistics import UNIT_PAGE_SIZE, UnitRow, row_rates, shift_month, unit_row
from feedback.public.units import UNIT_MODELS, unit_names
from feedback.statistics import service as stats
from feedback.statistics.models import COUNTERS, StatMonthly

RANKING_SIZE = 5


def min_ratings() -> int:
    """The ratings a unit needs in a month to be ranked (RANKING_MIN_RATINGS, default 30)."""
    return int(current_app.config.get("RANKING_MIN_RATINGS", 30))


@dataclass
class Ranking:
    """One page of a month's ranking of one unit kind, with its 红榜 and 黑榜."""

    month: str
    kind: str
    ranked: list[UnitRow]  # this page of the ranked units (enough ratings), best first
    too_few: list[UnitRow]  # this page of the 样本不足 units: shown after the ranked ones, not ranked
    red: list[UnitRow]
    black: list[UnitRow]
    min_ratings: int
    ranked_total: int = 0
    too_few_total: int = 0
    page: int = 1
    per_page: int = UNIT_PAGE_SIZE
    talks: list[UnitRow] = field(default_factory=list)  # 末位 this month and the month before: 约谈

    @property
    def total(self) -> int:
        """Every unit with ratings in the month, ranked or not."""
        return self.ranked_total + self.too_few_total


class _MonthBoard:
    """SQL over one month's pre-aggregated rows of one unit kind: a row per unit, whatever the
    number of ratings, so each query is an index range scan of at most a few thousand rows."""

    def __init__(self, kind: str, month: str, minimum: int):
        s = StatMonthly
        self.kind, self.minimum = kind, minimum
        model = UNIT_MODELS[kind]
        self.code = model.code
        self.base = (select(s.unit_id, *[getattr(s, c) for c in COUNTERS]).join(model, model.id == s.unit_id)
                     .where(s.unit_kind == kind, s.month == month, s.ratings > 0))
        good_rate = s.good * 1.0 / s.ratings
        average = s.score_sum * 1.0 / s.ratings
        self.best_first = [good_rate.desc(), average.desc(), model.code.asc()]
        self.worst_first = [good_rate.asc(), average.asc(), model.code.desc()]

    def count(self, ranked: bool) -> int:
        """How many units are ranked (enough ratings), or how many are not."""
        cond = StatMonthly.ratings >= self.minimum if ranked else StatMonthly.ratings < self.minimum
        return db.session.scalar(select(func.count()).select_from(self.base.where(cond).subquery())) or 0

    def rows(self, ranked: bool, order: list, limit: int, offset: int = 0) -> list[tuple[int, stats.Rates]]:
        """One slice of the ranked (or the too-few) units in ``order``, as (unit, rates)."""
        if limit <= 0:
            return []
        cond = StatMonthly.ratings >= self.minimum if ranked else StatMonthly.ratings < self.minimum
        stmt = self.base.where(cond).order_by(*order).limit(limit).offset(offset)
        return [(row.unit_id, row_rates(row)) for row in db.session.execute(stmt)]

    def last(self, ranked_total: int) -> dict[int, stats.Rates]:
        """末位: the ranked units tied with the worst (same 好评率 and 平均分, compared exactly in
        integers), ties included; none with fewer than two ranked units or when all of them tie."""
        if ranked_total < 2:
            return {}
        (worst_id, worst), = self.rows(True, self.worst_first, 1)
        good, ratings, score = (worst.counts[c] for c in ("good", "ratings", "score_sum"))
        s = StatMonthly
        tied = ((cast(s.good, BigInteger) * ratings == cast(s.ratings, BigInteger) * good)
                & (cast(s.score_sum, BigInteger) * ratings == cast(s.ratings, BigInteger) * score))
        found = {row.unit_id: row_rates(row)
                 for row in db.session.execute(self.base.where(s.ratings >= self.minimum, tied))}
        return {} if len(found) >= ranked_total else found

    def boards(self, ranked_total: int) -> tuple[list[tuple[int, int, stats.Rates]], list[tuple[int, int, stats.Rates]]]:
        """红榜: the best RANKING_SIZE; 黑榜: the worst RANKING_SIZE that had at least one bad review,
        worst first, as (rank, unit, rates). Each board takes at most half of the ranked units,
        so no unit is on both."""
        size = min(RANKING_SIZE, ranked_total // 2)
        if size == 0:
            return [], []
        red = [(i, uid, r) for i, (uid, r) in enumerate(self.rows(True, self.best_first, size), start=1)]
        worst = self.rows(True, self.worst_first, size)
        black = [(ranked_total - i, uid, r) for i, (uid, r) in enumerate(worst) if r.counts.get("bad", 0) > 0]
        return red, black


def _ranking_rows(kind: str, month: str, minimum: int, page: int, per_page: int):
    board = _MonthBoard(kind, month, minimum)
    ranked_total, too_few_total = board.count(True), board.count(False)
    red, black = board.boards(ranked_total)
    last = board.last(ranked_total)
    previous = _MonthBoard(kind, shift_month(month, -1), minimum)
    previous_last = set(previous.last(previous.count(True)))
    talks = [(None, uid, rates) for uid, rates in sorted(last.items()) if uid in previous_last]
    offset = (page - 1) * per_page
    ranked = [(offset + i, uid, r) for i, (uid, r) in
              enumerate(board.rows(True, board.best_first, min(per_page, ranked_total - offset), offset), start=1)]
    too_few: list = []
    if ranked_total - offset < per_page:
        too_few = [(None, uid, r) for uid, r in
                   board.rows(False, [board.code], per_page - len(ranked), max(0, offset - ranked_total))]
    return ranked_total, too_few_total, red, black, set(last), talks, ranked, too_few


def ranking(kind: str, month: str, page: int = 1, per_page: int = UNIT_PAGE_SIZE) -> Ranking:
    """The month's 红黑榜 for departments, halls or windows (one page of the full table). Ranked by
    好评率, then 平均分, then code; units below the minimum sample are listed after the ranked ones
    as 样本不足. The 末位 units (ties included) are marked, and those 末位 in the month before too
    are flagged for a 约谈 (``talks``). The ranks are computed once per statistics refresh (they
    cannot change in between); names are read live."""
    minimum = min_ratings()
    ranked_total, too_few_total, red, black, last, talks, ranked, too_few = by_watermark(
        ("ranking", kind, month, minimum, page, per_page), lambda: _ranking_rows(kind, month, minimum, page, per_page))
    talk_ids = {uid for _, uid, _ in talks}
    names = unit_names(kind, [uid for group in (red, black, ranked, too_few, talks) for _, uid, _ in group])

    def unit_rows(group) -> list[UnitRow]:
        out = []
        for rank, uid, rates in group:
            row = unit_row(kind, uid, rates, names)
            if rank is not None:
                row.extra["rank"] = rank
            row.extra["last"] = uid in last
            row.extra["talk"] = uid in talk_ids
            out.append(row)
        return out

    return Ranking(month, kind, unit_rows(ranked), unit_rows(too_few), unit_rows(red), unit_rows(black), minimum,
                   ranked_total, too_few_total, page, per_page, unit_rows(talks))
