"""The durable SQL store: articles, jobs and texts (SQLAlchemy 2, Alembic migrations).

SQLite is the default; PostgreSQL (`postgresql+psycopg://`) in production.

    schema.py   the tables
    engine.py   the engine, sessions, and migrations under a cross-process lock
    jobs.py     the write side: submit, claim (start), finish and fail jobs
    results.py  the read side: counts, results, articles, the streamed export
    glossary.py glossaries: import, list, remove, and the workers' refreshed view
    corrections.py  editors' corrections: recorded with the result, remembered for later articles
"""

from __future__ import annotations


from worker.store.engine import SQLITE_BUSY_TIMEOUT_MS, TRANSIENT_DB_ERRORS, upgrade_head
from worker.store.jobs import (
    DEFAULT_RUNNING_LEASE_S,
    JobStart,
    JobWrites,
    Submission,
    job_options,
    job_row,
    malformed_key,
)
from worker.store.corrections import CorrectionError, CorrectionStore, StoreCorrections
from worker.store.glossary import GlossaryEntry, GlossaryStore, StoreGlossaries
from worker.store.results import ResultReads, usable_id
from worker.store.schema import (
    FINISHED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUMMARY,
    TITLE,
    ArticleRow,
    Base,
    JobRow,
    TextRow,
    utcnow,
)


class Store(JobWrites, ResultReads, GlossaryStore, CorrectionStore):
    """All SQL the service runs. One per process (after a fork, open a new one).

    `running_lease_s`: how long a running job belongs to the delivery that started it (or last
    renewed it) — the task's hard time limit: past it, that run is certainly over (Celery
    killed it). Default: `BABELWIRE_TASK_TIME_LIMIT` from the settings."""

    def __init__(self, url: str, *, echo: bool = False, running_lease_s: float | None = None):
        super().__init__(url, echo=echo)
        self.running_lease_s = running_lease_s if running_lease_s is not None else _hard_time_limit()


def _hard_time_limit() -> float:
    from worker.config import get_settings

    try:
        return float(get_settings().task_time_limit)
    except Exception:  # a bad setting is reported by whoever reads the settings for real
        return DEFAULT_RUNNING_LEASE_S


__all__ = [
    "FINISHED", "QUEUED", "RUNNING", "STATUSES", "SUMMARY", "TITLE", "SQLITE_BUSY_TIMEOUT_MS",
    "TRANSIENT_DB_ERRORS", "ArticleRow", "Base", "CorrectionError", "GlossaryEntry", "JobRow", "JobStart",
    "Store", "StoreCorrections", "StoreGlossaries", "Submission", "TextRow",
    "job_options", "job_row", "malformed_key", "upgrade_head", "usable_id", "utcnow",
]
