"""The ``bench_pings`` table of the bare endpoint (outside the app's metadata: Alembic never sees it)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, func

bench_metadata = MetaData()
bench_pings = Table(
    "bench_pings", bench_metadata,
    Column("id", BigInteger, primary_key=True),
    Column("payload", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def ensure_ping_table(url: str) -> None:
    """Create ``bench_pings`` in the database at ``url`` if missing (bench setup only)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        bench_metadata.create_all(engine)
    finally:
        engine.dispose()
