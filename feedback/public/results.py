"""The published rectification results (整改结果公示): the searchable list, one record with its
public timeline, the open-data rows and the Atom feed's entries.

Everything is read from the publications table, whose public columns were copied when a
supervisor approved them; a withdrawn record keeps its place without its text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from feedback.clock import format_local
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.public.statistics import parse_month
from feedback.public.units import unit_names
from feedback.publications.models import PUBLIC_STATES, Publication
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES

_PUBLISHED_UNIT = {"department": Publication.department_id, "hall": Publication.hall_id,
                   "service_item": Publication.service_item_id}


def published_choices(kind: str) -> list[tuple[int, str]]:
    """Departments, halls or service items that have public results, by name: the filter menus
    of the results list (a province catalogues thousands of each; list only these)."""
    column = _PUBLISHED_UNIT[kind]
    ids = db.session.scalars(select(column).distinct().where(Publication.state.in_(PUBLIC_STATES),
                                                             column.is_not(None)))
    names = unit_names(kind, list(ids))
    return sorted(((i, n["name"]) for i, n in names.items()), key=lambda x: x[1])



@dataclass
class ResultFilters:
    """The results list's search and filters, as given in the query string."""

    q: str = ""
    department: int | None = None
    hall: int | None = None
    service_item: int | None = None
    month: str = ""
    outcome: str = ""

    @classmethod
    def from_args(cls, args) -> "ResultFilters":
        """The filters of a query string; unknown or malformed values are dropped."""
        def num(name):
            return as_id(args.get(name))

        outcome = (args.get("outcome") or "").strip()
        return cls(q=(args.get("q") or "").strip()[:50], department=num("department"), hall=num("hall"),
                   service_item=num("service_item"), month=parse_month(args.get("month"), ""),
                   outcome=outcome if outcome in OUTCOMES else "")

    def as_args(self) -> dict[str, str]:
        """The filters that are set, as query-string arguments (for paging links)."""
        out = {"q": self.q, "department": self.department, "hall": self.hall, "service_item": self.service_item,
               "month": self.month, "outcome": self.outcome}
        return {k: str(v) for k, v in out.items() if v}


def results_statement(filters: ResultFilters | None = None):
    """Published and withdrawn records matching ``filters``, newest first."""
    f = filters or ResultFilters()
    stmt = select(Publication).where(Publication.state.in_(PUBLIC_STATES))
    if f.department:
        stmt = stmt.where(Publication.department_id == f.department)
    if f.hall:
        stmt = stmt.where(Publication.hall_id == f.hall)
    if f.service_item:
        stmt = stmt.where(Publication.service_item_id == f.service_item)
    if f.month:
        stmt = stmt.where(Publication.month == f.month)
    if f.outcome:
        stmt = stmt.where(Publication.outcome == f.outcome)
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Publication.state == "published",
                          Publication.public_text.ilike(f"%{escaped}%", escape="\\"))
    return stmt.order_by(Publication.published_at.desc(), Publication.id.desc())


def results_page(filters: ResultFilters, page: int, per_page: int = 20) -> tuple[list[Publication], int]:
    """One page of the matching public records, newest first, and how many match in all."""
    stmt = results_statement(filters)
    rows = list(db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return rows, total


def public_record(pub_id: int) -> Publication | None:
    """The record if it is public (published or withdrawn), else None."""
    pub = db.session.get(Publication, pub_id)
    return pub if pub is not None and pub.state in PUBLIC_STATES else None


def level_label(level: int | None) -> str:
    """The Chinese label of a rating level; 投诉 for a record that came from a complaint."""
    return LEVELS[level].label if level in LEVELS else "投诉"


def timeline(pub: Publication) -> list[dict[str, Any]]:
    """The public steps: rated/complained → verified → rectified → replied → the citizen's verdict."""
    steps = [
        ("occurred", "群众评价" if pub.source == "evaluation" else "群众投诉", pub.occurred_at,
         level_label(pub.level) if pub.source == "evaluation" else ""),
        ("verified", "回访核实", pub.verified_at, ""),
        ("rectified", "整改", pub.rectified_at, OUTCOMES.get(pub.outcome or "", "")),
        ("replied", "答复群众", pub.replied_at,
         "" if pub.on_time is None else ("按时" if pub.on_time else "超期")),
        ("verdict", "群众评价办理结果", pub.handling_rated_at, HANDLING_RATINGS.get(pub.handling_rating or "", "")),
    ]
    return [{"key": k, "label": label, "at": at, "note": note} for k, label, at, note in steps if at is not None]


def record_dict(pub: Publication, names: dict[str, dict[int, dict[str, str]]], base_url: str) -> dict[str, Any]:
    """One public record as open data (withdrawn records keep their place, without text)."""
    level = LEVELS.get(pub.level) if pub.level else None
    withdrawn = pub.state == "withdrawn"

    def name(kind, uid):
        return names.get(kind, {}).get(uid, {}).get("name", "") if uid else ""

    return {
        "id": pub.id,
        "url": f"{base_url}/public/results/{pub.id}",
        "status": pub.state,
        "published_at": format_local(pub.published_at, "%Y-%m-%dT%H:%M:%S%z"),
        "withdrawn_at": format_local(pub.withdrawn_at, "%Y-%m-%dT%H:%M:%S%z"),
        "month": pub.month or "",
        "source": pub.source or "",
        "department": name("department", pub.department_id),
        "hall": name("hall", pub.hall_id),
        "window": name("window", pub.window_id),
        "service_item": name("service_item", pub.service_item_id),
        "level_score": level.value if level else None,
        "level_gbt39046": level.gbt39046 if level else None,
        "level_label": level.label if level else "",
        "score_points": level.score if level else None,
        "reasons": "" if withdrawn else "；".join(f"{c} {LABELS.get(c, '')}".strip() for c in pub.reasons or []),
        "outcome": "" if withdrawn else OUTCOMES.get(pub.outcome or "", ""),
        "on_time": None if withdrawn else pub.on_time,
        "handling_rating": "" if withdrawn else HANDLING_RATINGS.get(pub.handling_rating or "", ""),
        "rectified_at": "" if withdrawn else format_local(pub.rectified_at, "%Y-%m-%d"),
        "replied_at": "" if withdrawn else format_local(pub.replied_at, "%Y-%m-%d"),
        "public_text": "" if withdrawn else pub.public_text,
    }


def names_for(pubs: list[Publication]) -> dict[str, dict[int, dict[str, str]]]:
    """The public names of every unit the records mention, by kind (one query per kind)."""
    return {
        "department": unit_names("department", [p.department_id for p in pubs if p.department_id]),
        "hall": unit_names("hall", [p.hall_id for p in pubs if p.hall_id]),
        "window": unit_names("window", [p.window_id for p in pubs if p.window_id]),
        "service_item": unit_names("service_item", [p.service_item_id for p in pubs if p.service_item_id]),
    }


def results_for_export(limit: int = 100_000) -> list[Publication]:
    """Every public record, newest first, for the open-data download."""
    return list(db.session.scalars(results_statement().limit(limit)))


def feed_entries(limit: int = 50) -> list[Publication]:
    """The newest records for the Atom feed (a withdrawal updates its entry)."""
    updated = func.coalesce(Publication.withdrawn_at, Publication.published_at)
    return list(db.session.scalars(select(Publication).where(Publication.state.in_(PUBLIC_STATES))
                                   .order_by(updated.desc(), Publication.id.desc()).limit(limit)))
