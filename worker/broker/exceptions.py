"""Errors of the broker package (one base class)."""

from __future__ import annotations

from kombu.exceptions import OperationalError  # a publisher treats it as "broker unavailable"

from worker.errors import BabelwireError


class BrokerError(BabelwireError):
    """Base of the broker package's errors."""


class RefusedItem(BrokerError, ValueError):
    """Bytes on a queue or in the unacked hash that are not a message we run: they are logged
    (by reason, never their body) and moved to the dead-letter list."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class MissingKombuHook(BrokerError, RuntimeError):
    """The installed kombu lacks a private name the guarded transport overrides or uses."""


class ReplicationLag(BrokerError, OperationalError):
    """A publish did not reach the required number of Redis replicas in time (Sentinel)."""
