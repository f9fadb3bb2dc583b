"""Start-up checks for several web servers (README "Production"): in production the app
refuses FEEDBACK_WEB_SERVERS > 1 with the per-process ``memory://`` rate-limit store; a
Redis store gets a key prefix and short timeouts; a Redis that does not answer at start-up is
a warning, not a refusal, and while it is down each process still limits in its own memory
(no 500s, no unlimited public writes)."""
from __future__ import annotations

import logging
import sys

import pytest

from feedback import ConfigurationError, create_app
from feedback.config import Config
from tests.bench.stack import free_port

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _config(db_url: str, env: str = "production", **settings) -> Config:
    cfg = Config(ENV_NAME=env, SECRET_KEY="test-secret", SQLALCHEMY_DATABASE_URI=db_url,
                 PUBLIC_URL="https://feedback.example.gov.cn")
    for name, value in settings.items():
        setattr(cfg, name, value)
    return cfg


def _start(cfg: Config):
    app = create_app(cfg)
    with app.app_context():
        from feedback.extensions import db
        db.engine.dispose()
    return app


@SQLITE
def test_production_refuses_several_web_servers_on_the_per_process_memory_store(db_url):
    with pytest.raises(ConfigurationError) as refused:
        create_app(_config(db_url, WEB_SERVERS=2))
    text = str(refused.value)
    for needed in ("FEEDBACK_WEB_SERVERS=2", "memory://", "FEEDBACK_RATELIMIT_STORAGE_URI=redis://", "Refused"):
        assert needed in text, f"the refusal must name {needed!r}: {text}"


@SQLITE
@pytest.mark.parametrize("case", ["one server", "development", "testing", "limits off"])
def test_memory_store_is_accepted_where_it_counts_right_or_nothing_is_limited(db_url, case):
    settings = {"one server": dict(WEB_SERVERS=1), "development": dict(WEB_SERVERS=3),
                "testing": dict(WEB_SERVERS=3), "limits off": dict(WEB_SERVERS=3, RATELIMIT_ENABLED=False)}[case]
    env = case if case in ("development", "testing") else "production"
    app = _start(_config(db_url, env, **settings))
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://", case


@SQLITE
def test_web_servers_comes_from_the_environment_and_must_be_positive(db_url):
    assert Config.from_env({"FEEDBACK_WEB_SERVERS": "3"}).WEB_SERVERS == 3
    assert Config().WEB_SERVERS == 1
    with pytest.raises(ConfigurationError, match="FEEDBACK_WEB_SERVERS must be 1 or more"):
        create_app(_config(db_url, WEB_SERVERS=0))


@SQLITE
def test_a_redis_store_needs_its_client_library(db_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails as if not installed
    with pytest.raises(ConfigurationError, match="pip install redis"):
        create_app(_config(db_url, WEB_SERVERS=2, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0"))


@SQLITE
def test_an_unreachable_redis_warns_at_start_and_each_process_limits_in_memory_meanwhile(db_url, caplog):
    port = free_port()  # nothing listens there: connections are refused at once
    cfg = _config(db_url, WEB_SERVERS=2, RATELIMIT_STORAGE_URI=f"redis://:s3cret-pw@127.0.0.1:{port}/0",
                  SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False,
                  WTF_CSRF_ENABLED=False)  # CSRF is checked before the limits: let the posts reach them
    with caplog.at_level(logging.WARNING):
        app = _start(cfg)
    warnings = [r.getMessage() for r in caplog.records if "rate-limit store" in r.getMessage()]
    assert warnings, "an unreachable Redis must be said at start-up"
    assert f"127.0.0.1:{port} unreachable" in warnings[0] and "in its own memory" in warnings[0], warnings
    assert "s3cret-pw" not in " ".join(warnings), "the warning must not print the Redis password"
    options = app.config["RATELIMIT_STORAGE_OPTIONS"]
    assert options["key_prefix"] == "haochaping", options
    assert options["socket_connect_timeout"] == options["socket_timeout"] == 0.5, options

    # Redis still down: rating by link (30 POSTs an hour per address, counted before the link is
    # looked at) neither fails with a 500 nor goes unlimited; this process counts in its own memory.
    client = app.test_client()
    statuses = [client.post("/e/no-such-link", data={"level": "5"}).status_code for _ in range(31)]
    assert 500 not in statuses, f"a rate-limited request failed while Redis was down: {statuses}"
    assert 429 not in statuses[:30] and statuses[30] == 429, statuses
    with app.app_context():
        from feedback.extensions import db
        db.engine.dispose()


@SQLITE
def test_the_key_prefix_and_timeout_are_settings_and_explicit_storage_options_win(db_url):
    cfg = Config.from_env({"FEEDBACK_RATELIMIT_STORAGE_PREFIX": "hcp-linjiang", "FEEDBACK_ENV": "testing",
                           "FEEDBACK_RATELIMIT_STORAGE_TIMEOUT_SECONDS": "1.5", "FEEDBACK_DATABASE_URL": db_url,
                           "FEEDBACK_RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0"})
    cfg.extra["RATELIMIT_STORAGE_OPTIONS"] = {"socket_timeout": 2}
    app = _start(cfg)
    assert app.config["RATELIMIT_STORAGE_OPTIONS"] == {"key_prefix": "hcp-linjiang", "socket_connect_timeout": 1.5,
                                                       "socket_timeout": 2}


@SQLITE
def test_a_malformed_store_url_is_refused_at_start_up(db_url):
    with pytest.raises(Exception, match="unknown storage scheme"):  # Flask-Limiter's own ConfigurationError
        create_app(_config(db_url, WEB_SERVERS=2, RATELIMIT_STORAGE_URI="rdis://127.0.0.1:6379/0"))
