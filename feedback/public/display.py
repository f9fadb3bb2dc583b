"""Display preferences of the citizen pages: 大字版 (large text) and 高对比 (high contrast).

Both are remembered in cookies for a year, so a choice made on one page holds on every
citizen page (public, complaints, the rating link /e/, the reply rating /h/, the home page).
They are switched by plain links to /public/display, which sets the cookie and sends the
browser back to the page it came from: no JavaScript needed. The way back is checked to be a
path on this site (never an open redirect).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, g, request, url_for

TEXT_COOKIE = "text_size"
CONTRAST_COOKIE = "contrast"
YEAR = 365 * 86400
# The blueprints a citizen visits: their pages show the two switches and honour the choice.
CITIZEN_AREAS = frozenset({"core", "public", "complaints", "rating", "handling"})


@dataclass(frozen=True)
class Display:
    """The choices of this browser, and whether this page is one a citizen visits."""

    large_text: bool
    high_contrast: bool
    citizen: bool

    @property
    def body_classes(self) -> str:
        """Classes added to <body> (with a leading space), empty on staff pages."""
        if not self.citizen:
            return ""
        return (" large-text" if self.large_text else "") + (" high-contrast" if self.high_contrast else "")


def current() -> Display:
    """The display choices of the current request (the public area's ``?text=`` wins)."""
    large = g.get("large_text")
    if large is None:
        large = request.cookies.get(TEXT_COOKIE) == "large"
    return Display(large_text=bool(large), high_contrast=request.cookies.get(CONTRAST_COOKIE) == "high",
                   citizen=request.blueprint in CITIZEN_AREAS)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the home page: no open redirect.

    Refused: absolute URLs, scheme-relative ``//host``, backslashes (browsers read ``/\\host``
    as ``//host``), control characters and anything not starting with one slash.
    """
    target = (target or "").strip()
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return url_for("core.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("core.index")
    return target


def switch_url(**choice: str) -> str:
    """The link that switches one preference (``text=large`` …) and comes back to this page."""
    here = request.full_path if request.query_string else request.path
    return url_for("public.display", next=here, **choice)


def apply(response, text: str | None, contrast: str | None):
    """Store (or clear) the choices on ``response``."""
    secure = current_app.config.get("SESSION_COOKIE_SECURE", True)
    if text == "large":
        response.set_cookie(TEXT_COOKIE, "large", max_age=YEAR, samesite="Lax", httponly=True, secure=secure)
    elif text == "normal":
        response.delete_cookie(TEXT_COOKIE)
    if contrast == "high":
        response.set_cookie(CONTRAST_COOKIE, "high", max_age=YEAR, samesite="Lax", httponly=True, secure=secure)
    elif contrast == "normal":
        response.delete_cookie(CONTRAST_COOKIE)
    return response


def context() -> dict:
    """Template globals: ``display`` (the choices) and ``display_switch`` (the links)."""
    try:
        display = current()
    except RuntimeError:  # rendered outside a request (a mail, a PDF)
        display = Display(False, False, False)
    return {"display": display, "display_switch": switch_url}
