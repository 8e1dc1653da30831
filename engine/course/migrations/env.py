"""Alembic environment of the progress database; run by engine.course.progress.migrate (never an alembic.ini).

The caller passes an open connection in `config.attributes["connection"]` (inside its transaction); a developer
may instead give a URL with `-x url=...` (e.g. `alembic -c /dev/null -x url=sqlite:///p.sqlite revision
--autogenerate`, with script_location set). Two processes that start at once must not both create the tables:
on PostgreSQL an advisory lock serializes them; on SQLite the caller's BEGIN IMMEDIATE does.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from engine.course.tables import Base

# an arbitrary constant: the key of the advisory lock that serializes migrations of one PostgreSQL database
_PG_LOCK = 7316_0016

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the progress database is migrated online only (engine.course.progress.migrate)")
run_migrations_online()
