"""The engine (SQLite tuned for concurrent writers, or PostgreSQL), sessions, and migrations
run under a cross-process lock.

SQLite: WAL, a busy timeout, and `BEGIN IMMEDIATE` for writes, so concurrent writers queue
instead of failing; readers stay DEFERRED so an export never blocks the workers.

Migrations: `upgrade_head(engine)` returns at once when the schema is current, and otherwise
runs `alembic upgrade head` under a lock (a PostgreSQL advisory lock, or a file lock next to
the SQLite file), so any number of processes may start together. Alembic's scripts live in
worker/migrations and are found by path: the store never imports them (and they import only
`worker.store.schema`), so there is no import cycle between the two.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from worker.errors import DATABASE_FAULTS

TRANSIENT_DB_ERRORS = DATABASE_FAULTS  # the name the task context and tests use
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
PG_MIGRATION_LOCK = 7340033  # arbitrary, constant


def create_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa_create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa_create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); pysqlite's implicit transactions would
        # start DEFERRED ones that fail with "database is locked" on upgrade to write.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("babelwire_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding a lock that serializes migrations across processes."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")
            try:
                yield conn
            finally:
                conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        yield conn


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_head(engine: Engine) -> None:
    """`alembic upgrade head`: idempotent, and safe when several processes start at once."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    with migration_lock(engine) as conn:
        # Another process may have upgraded while we waited for the lock: alembic reads the
        # version table again inside the lock and does nothing when it is current.
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


class Database:
    """An engine and its sessions: what the store's halves (jobs, results) share."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine: Engine = create_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        upgrade_head(self.engine)

    @contextmanager
    def migration_lock(self) -> Iterator[Connection]:
        with migration_lock(self.engine) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            session.connection(execution_options={"babelwire_read_only": True})
            yield session

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)
