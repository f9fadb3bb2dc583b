"""Contact erasure reaches every copy (DOMAIN.md, Privacy): after the ``contact_erasure`` job has
run past the retention period, no column of any table — found by reflecting the database, so a
table added tomorrow is scanned too — holds the citizen's phone number in any form or her name,
and her photos are gone from the disk."""
from __future__ import annotations

import json
import re
import unicodedata
from datetime import timedelta

import sqlalchemy as sa

from feedback.privacy import service as privacy
from tests.privacy.conftest import NAME, NATIONAL

# The national number with any separators people and formatters put between digits; it is
# inside every other form too (+8613800138000, 8613800138000, +86 138 0013 8000, 138-0013-8000).
PHONE = re.compile(r"[\s\-.()（）]*".join(NATIONAL))
# Columns that keep a number on purpose, with the reason (SECURITY.md, Personal data).
KEPT_ON_PURPOSE = {
    "sms_opt_outs.phone": "an opt-out must go on stopping invitations to that number",
}
NOT_TEXT = (sa.Integer, sa.Numeric, sa.Float, sa.Boolean, sa.DateTime, sa.Date, sa.Time, sa.Interval)


def _texts(value) -> list[str]:
    """The ways a stored value can read: itself, and a JSON document decoded (SQLite keeps
    non-ASCII in JSON as \\uXXXX escapes), everything folded to half-width (NFKC)."""
    if value is None:
        return []
    if isinstance(value, (dict, list)):
        forms = [json.dumps(value, ensure_ascii=False)]
    elif isinstance(value, bytes):
        forms = [value.decode("utf-8", "replace")]
    else:
        forms = [str(value)]
        try:
            forms.append(json.dumps(json.loads(forms[0]), ensure_ascii=False))
        except ValueError:
            pass
    return [unicodedata.normalize("NFKC", f) for f in forms]


def copies_left(engine, *, phone=PHONE, name: str = NAME, only: set[str] | None = None) -> list[str]:
    """``table.column (row …): what`` for every copy of the number or the name still stored.

    Every table of the live database (or ``only`` these) and every column that can hold text
    (anything but numbers, booleans and times: strings, texts, JSON, types reflection cannot name).
    """
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    found = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if only is not None and table.name not in only:
                continue
            columns = [c for c in table.columns if not isinstance(c.type, NOT_TEXT)]
            if not columns:
                continue
            key = list(table.primary_key.columns)[:1]
            for row in conn.execute(sa.select(*key, *columns)):
                row_id, values = (row[0], row[1:]) if key else ("?", row)
                for column, value in zip(columns, values):
                    where = f"{table.name}.{column.name}"
                    for text in _texts(value):
                        if phone.search(text) and where not in KEPT_ON_PURPOSE:
                            found.append(f"{where} (row {row_id}): phone number in {text[:120]!r}")
                            break
                        if name in text:
                            found.append(f"{where} (row {row_id}): name {name} in {text[:120]!r}")
                            break
    return found


def test_the_scanner_finds_a_number_in_every_form_and_a_name_in_json():
    assert all(PHONE.search(unicodedata.normalize("NFKC", s)) for s in (
        "+8613800138000", "8613800138000", "13800138000", "138 0013 8000", "138-0013-8000", "１３８００１３８０００"))
    assert not PHONE.search("138****8000")
    assert any(NAME in t for t in _texts(json.dumps({"contact": NAME})))  # \u674e… in SQLite's JSON


def test_after_the_retention_period_no_table_holds_the_citizens_number_or_name_and_her_photos_are_gone(
        app, db, clock, citizen_traces):
    before = copies_left(db.engine)
    assert before, "the scenario left no personal data: the scan would prove nothing"
    tables = {f.split(".")[0] for f in before}
    expected = {"service_records", "complaints", "tickets", "evaluations", "inbound_sms", "outbound_sms"}
    assert expected <= tables, before

    clock.set(citizen_traces.closed_at + timedelta(days=int(app.config["CONTACT_RETENTION_DAYS"]) + 1))
    privacy.erase_contacts(clock.now)
    db.session.remove()

    left = copies_left(db.engine)
    assert left == [], "personal data survived the contact_erasure job:\n" + "\n".join(left)
    still_there = [str(p) for p in citizen_traces.photo_files if p.exists()]
    assert still_there == [], f"complaint photos still on disk: {still_there}"
