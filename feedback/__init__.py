"""好差评 (Good/Bad Review): the citizen feedback platform of government service halls."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from feedback.config import INSTANCE_DIR, PROJECT_ROOT, Config


class ConfigurationError(RuntimeError):
    """The app refuses to start with an unsafe or incomplete configuration."""


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. Never migrates and never starts the scheduler.

    ``config`` is a Config, a mapping of overrides applied on top of the
    environment, or None for the environment alone.
    """
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    if isinstance(config, Config):
        cfg = config
    else:
        cfg = Config.from_env()
    app.config.update(cfg.as_flask())
    if isinstance(config, Mapping):
        app.config.update(config)
    _check_config(app)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix  # only behind a proxy

        # The client's address (rate limits, audit) and scheme (HSTS, CSRF referrer check)
        # as the trusted proxies saw them; never trust more hops than there are proxies.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    # Imported here, not at the top: this package's __init__ runs on every `import feedback.x`,
    # and a script that needs only the clock or a model must not load every blueprint.
    from feedback.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    from feedback import reconnect  # late for the reason above

    reconnect.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    login_manager.init_app(app)

    from feedback import models  # noqa: F401  (register every table; late for the reason above)
    from feedback import web  # late for the reason above

    web.init_app(app)

    from feedback.cli import register_cli  # late for the reason above

    register_cli(app)
    return app


def _check_rate_limit_store(app: Flask) -> None:
    """The rate-limit store (README "Production"): one count across every web process.

    Refused in production: several web servers (FEEDBACK_WEB_SERVERS > 1) on ``memory://``,
    where each process counts alone and the public writes get N × their limits; a warning in
    one server's log stops no flood, and the fix is one setting. Not refused: a Redis that does
    not answer at start-up (a warning): Flask-Limiter connects lazily, each process limits in
    its own memory meanwhile and returns to Redis when it answers, and a Redis blip during a
    deploy must not take the rating path down (nor `flask db upgrade`, nor the scheduler).
    """
    # Late: only read when the app starts (the limits package's Redis storage loads its client).
    from urllib.parse import urlsplit
    from limits.storage import RedisStorage  # late: see above

    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    scheme = urlsplit(uri).scheme
    servers = int(app.config.get("WEB_SERVERS") or 0)
    if servers < 1:
        raise ConfigurationError("FEEDBACK_WEB_SERVERS must be 1 or more (the web servers behind the load balancer)")
    production = app.config["ENV_NAME"] not in ("development", "testing")
    if production and servers > 1 and scheme == "memory" and app.config.get("RATELIMIT_ENABLED", True):
        raise ConfigurationError(
            f"FEEDBACK_WEB_SERVERS={servers} with FEEDBACK_RATELIMIT_STORAGE_URI=memory://: every web process "
            f"would keep its own counts, so the public writes (complaint form, rating links, tablets) would get "
            f"{servers} × (gunicorn workers) their limits. Set FEEDBACK_RATELIMIT_STORAGE_URI=redis://host:6379/0, "
            f"the one Redis all web servers share (README \"Production\"). Refused, not warned: a warning in "
            f"one server's log stops no flood.")
    if scheme not in RedisStorage.STORAGE_SCHEME:
        return
    client = "valkey" if scheme.startswith("valkey") else "redis"
    try:
        module = __import__(client)
    except ImportError:
        raise ConfigurationError(f"FEEDBACK_RATELIMIT_STORAGE_URI={scheme}://… needs its client library: "
                                 f"pip install {client}") from None
    timeout = float(app.config["RATELIMIT_STORAGE_TIMEOUT_SECONDS"])
    options = {"key_prefix": app.config["RATELIMIT_STORAGE_PREFIX"], "socket_connect_timeout": timeout,
               "socket_timeout": timeout}
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {**options, **(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {})}
    if production and app.config.get("RATELIMIT_ENABLED", True):
        where = urlsplit(uri).netloc.rpartition("@")[2] or uri  # never the password
        try:
            conn = module.from_url(uri, socket_connect_timeout=timeout, socket_timeout=timeout)
            try:
                conn.ping()
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001  (any failure to answer is the same warning)
            fallback = ("each web process limits in its own memory until it answers"
                        if app.config.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED") else
                        "rate-limited requests fail until it answers (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED is off)")
            app.logger.warning("rate-limit store %s unreachable at start-up (%s): %s", where,
                               type(exc).__name__, fallback)


def _check_config(app: Flask) -> None:
    env = app.config["ENV_NAME"]
    if not app.config.get("SECRET_KEY"):
        if env in ("development", "testing"):
            # A fixed key outside production keeps sessions across `make run` restarts.
            app.config["SECRET_KEY"] = "dev-only-not-secret-" + env
        else:
            raise ConfigurationError(
                "FEEDBACK_SECRET_KEY is required outside development "
                "(set FEEDBACK_ENV=development for a local run)")
    if app.config["SMS_BACKEND"] not in ("console", "twilio"):
        raise ConfigurationError("FEEDBACK_SMS_BACKEND must be 'console' or 'twilio'")
    if app.config["SMS_BACKEND"] == "twilio":
        missing = [k for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not app.config.get(k)]
        if not (app.config.get("TWILIO_FROM_NUMBER") or app.config.get("TWILIO_MESSAGING_SERVICE_SID")):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ConfigurationError("the twilio SMS backend needs " + ", ".join(missing))
    _check_rate_limit_store(app)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would look for psycopg2.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri[len("postgresql://"):]
    if uri.startswith("sqlite:///"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    # No pool_pre_ping (a round trip before every request): a connection found dead on its first
    # statement is replaced and the request runs once more (feedback/reconnect.py, issue 22).
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
