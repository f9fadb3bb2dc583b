"""Fixtures of the rating tests."""
from __future__ import annotations

import pytest

from feedback.accounts import service as accounts


@pytest.fixture
def api_key(db, city):
    """``api_key(department_code=None)``: the headers of a new API key that may write ratings
    (of that department's records only, when given)."""
    def make(department_code=None):
        _, token = accounts.create_api_key("窗口系统", ["ratings:write"], department_code=department_code)
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}
    return make
