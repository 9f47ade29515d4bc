"""Standard Webhooks signatures (https://www.standardwebhooks.com), via `standardwebhooks`.

Every request carries `webhook-id` (the event's id: the same on every retry and replay, so a
receiver deduplicates by it), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Secrets are
`whsec_<base64 of 32 random bytes>`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

from worker.delivery.exceptions import SecretError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24  # Standard Webhooks: between 24 and 64 bytes
MAX_SECRET_BYTES = 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """The secret back if it is `whsec_` + base64 of 24–64 bytes, else SecretError."""
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise SecretError(f"a webhook secret holds {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes (got {len(raw)})")
    return secret


def signed_headers(secret: str, message_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` (the exact text sent, UTF-8)."""
    at = at or datetime.now(timezone.utc)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


def verify(secret: str, body: bytes | str, headers: dict[str, str]) -> object:
    """What a receiver does (tests and the docs use it): the parsed body, or an exception."""
    return Webhook(secret).verify(body, headers)
