"""Alembic's migration scripts for the store (worker/store/schema.py).

They are run by `worker.store.engine.upgrade_head` (the worker, the CLI and the API call it
at start, through `Store.migrate`), which finds this folder by path: nothing here is imported
by the store, and `env.py` imports only the store's schema. Developers:
`alembic -c worker/alembic.ini revision --autogenerate -m ...`.
"""

from worker.store.engine import alembic_config, current_revision, head_revision, upgrade_head

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade_head"]
