"""The worker package's exceptions, and the one place third-party faults are classified.

Every error of ours derives from `BabelwireError`. A broker (Redis, kombu) or database
(SQLAlchemy) fault that goes away by itself — a restart, a failover, an exhausted pool — is
turned into one `ServiceUnavailable` by `unavailable_on_fault()` (as httpx's `_exceptions.py`
maps its transports' errors), so the API answers 503 in one handler and the CLI exits with
one message, whatever library raised it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import exc as sa_exc

from tasks.process import BROKER_TRANSIENT_ERRORS

# Faults that go away by themselves (server restart, failover, lock contention): retried.
DATABASE_FAULTS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # connection pool exhausted
)
BROKER_FAULTS: tuple[type[BaseException], ...] = BROKER_TRANSIENT_ERRORS
SERVICE_FAULTS = BROKER_FAULTS + DATABASE_FAULTS


class BabelwireError(Exception):
    """Base of every error the worker package raises on purpose."""


class ConfigurationError(BabelwireError):
    """A setting is invalid (the CLI exits 2 naming the variable)."""


class ServiceUnavailable(BabelwireError):
    """The broker or the database cannot be reached now; retry later."""

    def __init__(self, service: str, cause: BaseException):
        super().__init__(f"{service} unavailable ({type(cause).__name__}): {cause}")
        self.service = service
        self.cause = cause


class InvalidOutputPath(BabelwireError):
    """An output path the CLI refuses to write (a device, FIFO, symlink, or no such folder)."""


def as_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """`exc` as a ServiceUnavailable if it is a broker or database fault, else None."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, BROKER_FAULTS):
        return ServiceUnavailable("broker", exc)
    if isinstance(exc, DATABASE_FAULTS):
        return ServiceUnavailable("database", exc)
    return None


@contextmanager
def unavailable_on_fault() -> Iterator[None]:
    """Re-raise a broker or database fault inside the block as ServiceUnavailable."""
    try:
        yield
    except SERVICE_FAULTS as exc:
        mapped = as_unavailable(exc)
        assert mapped is not None
        raise mapped from exc
