"""Errors of webhook and result-queue delivery. One base, so callers can catch them all."""

from __future__ import annotations

from worker.errors import BabelwireError


class DeliveryError(BabelwireError):
    """Base of every delivery error."""


class SecretError(DeliveryError, ValueError):
    """A signing secret that is not a Standard Webhooks `whsec_…` secret of enough bytes."""


class UnsafeURLError(DeliveryError):
    """A callback URL refused before any connection: not allowlisted, a forbidden scheme, or
    a host that resolves to a loopback, link-local, metadata or private address."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{_shown(url)}: {reason}")
        self.url = url
        self.reason = reason


class ResolveError(DeliveryError):
    """The callback's host name did not resolve (may be temporary: retried)."""


class EndpointError(DeliveryError, ValueError):
    """A webhook endpoint definition that cannot be stored (bad URL, unknown event type)."""


def _shown(url: str) -> str:
    return url if len(url) <= 200 else url[:197] + "..."


class TransportError(DeliveryError):
    """The request did not get an HTTP answer: refused, reset, timed out, TLS failure."""
