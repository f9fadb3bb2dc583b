"""The hall wallboard /wall/<hall code>: public, no login, no personal data, made for a 1920×1080
screen in the hall and read from 5 metres.

It refreshes itself every 60 seconds: a ``<meta http-equiv="refresh">`` inside ``<noscript>``
when JavaScript is off, otherwise static/js/wall.js, which fetches the page and swaps the
figures in place (no white flash; a failed fetch keeps the last figures and says so, where a
reload would leave the screen on the browser's error page).

The QR code leads to the public complaint form with this hall already chosen
(/complaints/new?hall=<id>): a walk-in citizen has no service record, and a rating is always a
rating of one record (its link /e/<token> comes by SMS or on the window's tablet), so what a
phone can do from a poster in the hall is give feedback about the hall — the board says so.
"""
from __future__ import annotations

import io

import segno
from flask import Blueprint, current_app, render_template, url_for

from feedback.clock import format_local, to_local
from feedback.wall import service

bp = Blueprint("wall", __name__, url_prefix="/wall")
bp.access = "public"  # type: ignore[attr-defined]

REFRESH_SECONDS = 60
CACHE_SECONDS = 30  # a shared cache may keep the board this long (the data are public)
WEEKDAYS = "一二三四五六日"


def pct(value) -> str:
    """A rate as a percentage with one decimal; — when there is nothing to divide."""
    return "—" if value is None else f"{value * 100:.1f}%"


def score(value) -> str:
    """An average score with two decimals; — when nobody rated."""
    return "—" if value is None else f"{value:.2f}"


def feedback_url(hall_id: int) -> str:
    """The address the board's QR code opens: the public complaint form with the hall chosen."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + url_for("complaints.new", hall=hall_id)


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an inline SVG that scales to its box (a viewBox, no fixed size)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=1, border=2, xmldecl=False, svgns=True, omitsize=True,
                                    title="意见反馈二维码", dark="#000", light="#fff")
    return buf.getvalue().decode()


@bp.get("/<hall_code>")
def board(hall_code: str):
    """The wallboard of one hall; an unknown or inactive hall is a 404 page in Chinese."""
    hall = service.find_hall(hall_code)
    if hall is None:
        return render_template("wall/missing.html", refresh=REFRESH_SECONDS), 404
    data = service.board(hall)
    target = feedback_url(hall.id)
    weekday = WEEKDAYS[to_local(data.now).weekday()]
    response = current_app.make_response(render_template(
        "wall/board.html", board=data, pct=pct, score=score, refresh=REFRESH_SECONDS, qr=qr_svg(target),
        qr_target=target, date_label=format_local(data.now, "%Y年%m月%d日") + f" 星期{weekday}",
        updated_label=format_local(data.now, "%H:%M:%S")))
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return response
