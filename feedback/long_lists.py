"""A long list's search box (static/js/list-filter.js): the attributes a select carries to get one.

A province's department list has over a thousand entries, a hall's service items hundreds; a
select asks for the box with ``render_kw=searchable("部门名称")`` and gets it once it has more
options than the script's threshold. Check lists (admin/_checks.html) ask in their template.
"""
from __future__ import annotations


def searchable(label: str) -> dict[str, object]:
    """``render_kw`` of a select whose long list is narrowed by typing ``label`` (e.g. 部门名称)."""
    return {"data-filter": True, "data-filter-label": label}
