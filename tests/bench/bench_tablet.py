"""Counter-tablet ratings under load (issue 22): POST /terminal/<code>/ratings beside the bare insert.

Part of the ratings bench (tests/bench/run.py): on the same database and gunicorn, each round
also runs wrk (lua/tablet.lua) at the tablet endpoint. What a real tablet sends: its secret
cookie (a terminal paired to the record's window, written here as the pairing would), the
``X-Terminal-Request`` header, a unique Idempotency-Key and a rating of a distinct unrated
record completed at its window (the real mix of levels; a bad one carries its reason, as the
tablet asks for one). The same file of requests also goes to POST /bench/ping for the bare
figure. Every 2xx is checked to be one new rating by those terminals.
"""
from __future__ import annotations

import hashlib
import json
import random
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tests.bench import datagen

# The real mix (as rate.lua): 99.5 % good; a bad one carries a reason and opens a ticket.
LEVELS = ((0.003, 2, [213]), (0.005, 1, [115]), (0.035, 3, []), (0.145, 4, []), (1.0, 5, []))


def prepare(url: str, pool_prefix: str, start: int, count: int, path: Path, seed: int = 22) -> list[int]:
    """Pair one terminal per window of the pool records ``start`` … ``start + count`` (by number)
    that are still unrated, and write one tablet request per record to ``path``. Returns the ids
    of the terminals made (their ratings are counted by the check)."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    first, last = f"{pool_prefix}{start:08d}", f"{pool_prefix}{start + count:08d}"
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        rows = conn.execute(
            "SELECT r.id, r.window_id, w.code FROM service_records r JOIN windows w ON w.id = r.window_id "
            "LEFT JOIN evaluations e ON e.service_record_id = r.id "
            "WHERE r.record_number >= %s AND r.record_number < %s AND e.id IS NULL ORDER BY r.record_number",
            (first, last)).fetchall()
        cookies: dict[int, str] = {}
        for window_id in sorted({w for _, w, _ in rows}):
            secret = secrets.token_urlsafe(24)
            terminal_id = conn.execute(
                "INSERT INTO terminals (window_id, name, secret_hash, paired_at, created_at) "
                "VALUES (%s, 'bench', %s, %s, %s) RETURNING id",
                (window_id, hashlib.sha256(secret.encode()).hexdigest(), now - timedelta(days=3),
                 now - timedelta(days=3))).fetchone()[0]
            cookies[window_id] = f"fb_terminal={terminal_id}.{secret}"
        conn.commit()
    lines = []
    for record_id, window_id, code in rows:
        r = rng.random()
        level, reasons = next((lv, rs) for share, lv, rs in LEVELS if r < share)
        body = {"record_id": record_id, "level": level, "reasons": reasons,
                "comment": "窗口人员业务不熟练" if reasons else "", "rated_at": now.isoformat(),
                "reasons_version": None}
        body = {k: v for k, v in body.items() if v is not None}
        lines.append(f"/terminal/{code}/ratings\t{cookies[window_id]}\t{uuid.uuid4().hex}\t"
                     f"{json.dumps(body, ensure_ascii=False)}\n")
    rng.shuffle(lines)
    path.write_text("".join(lines), encoding="utf-8")
    return [int(c.split("=", 1)[1].split(".", 1)[0]) for c in cookies.values()]


def tablet_ratings(url: str, terminal_ids: list[int]) -> int:
    """Ratings stored by the bench's terminals."""
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        return conn.execute("SELECT count(*) FROM evaluations WHERE terminal_id = ANY(%s)",
                            (terminal_ids,)).fetchone()[0]
