"""The bench WSGI app: the real app plus one bare route, served by the same gunicorn workers.

    gunicorn tests.bench.bench_wsgi:app

``POST /bench/ping`` is the practical ceiling of the stack: it parses the JSON (or form) body and
inserts one row into ``bench_pings`` through the same Flask app, the same request hooks
and the same SQLAlchemy session and pool as ``POST /api/v1/evaluations``, then commits.
Anything a rating costs beyond that is the rating path's own work. The table lives
outside the app's metadata (tests/bench/pings.py creates it).
"""
from __future__ import annotations

from flask import jsonify, request
from sqlalchemy import insert

from feedback import create_app
from feedback.extensions import csrf, db
from tests.bench.pings import bench_pings


def ping():
    """Insert one row and commit: the least a write request can do on this stack.

    The body is JSON (the rating bench) or a form (the SMS bench sends Twilio's form here)."""
    data = request.get_json(silent=True) or request.form
    payload = data.get("record_number", "") if "record_number" in data else data.get("MessageSid", "")
    row_id = db.session.execute(
        insert(bench_pings).values(payload=str(payload)[:200]).returning(bench_pings.c.id)
    ).scalar_one()
    db.session.commit()
    return jsonify({"id": row_id}), 201


def create_bench_app():
    """create_app() from the environment, plus the bare route (CSRF-exempt like the API)."""
    application = create_app()
    application.add_url_rule("/bench/ping", "bench_ping", csrf.exempt(ping), methods=["POST"])
    return application


app = create_bench_app()
