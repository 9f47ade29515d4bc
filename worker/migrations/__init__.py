"""Alembic migrations for the store, configured in code (no alembic.ini needed).

`upgrade_head(store)` is what the worker, the CLI and the API run at start: it returns at
once when the schema is current, and otherwise upgrades under a cross-process lock
(a PostgreSQL advisory lock, or a file lock next to the SQLite file), so any number of
processes may start together. Developers: `alembic -c worker/alembic.ini revision -m ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from worker.store import Store

MIGRATIONS_DIR = Path(__file__).resolve().parent


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


def current_revision(store: "Store") -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_head(store: "Store") -> None:
    head = head_revision()
    if current_revision(store) == head:
        return
    with store.migration_lock() as conn:
        # Another process may have upgraded while we waited for the lock: alembic reads the
        # version table again inside the lock and does nothing when it is current.
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
