"""Cells of exported CSV and XLSX files that a spreadsheet will never run as a formula.

Text typed by citizens, handlers or administrators reaches exports (a staff name, a
handler's measures, a public result). A cell that starts with ``= + - @`` (or a tab or
carriage return) is a formula to Excel and WPS: ``=HYPERLINK(...)`` would run on the reader's
machine (CSV injection). CSV cells get a leading apostrophe, as OWASP advises; XLSX cells are
stored as text (openpyxl would otherwise store a string starting with "=" as a formula).
"""
from __future__ import annotations

from typing import Any, Iterable

from openpyxl.cell import WriteOnlyCell

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text that a spreadsheet would read as a formula gets a leading "'"."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(row: dict) -> dict:
    """Every cell of a CSV row (a mapping) made safe with :func:`csv_cell`."""
    return {key: csv_cell(value) for key, value in row.items()}


def from_csv_cell(value: str) -> str:
    """Undo :func:`csv_cell` on import: a leading "'" before a formula character is ours."""
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def append_xlsx_row(sheet, values: Iterable[Any]) -> None:
    """Append a row to an openpyxl worksheet (normal or write-only) with every text cell stored
    as text: openpyxl stores a string that starts with "=" as a formula otherwise."""
    cells = []
    for value in values:
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            cells.append(cell)
        else:
            cells.append(value)
    sheet.append(cells)
