"""What the routes depend on: the services (store, broker, metrics, templates), the bearer
token for /v1, and the reviewer's session for the review pages.

Review sessions: `/login` checks a token and sets a cookie holding a *signed* session value
(itsdangerous, keyed from the configured tokens) that names the token only by a fingerprint:
the cookie never carries the token itself, expires after `SESSION_MAX_AGE_S`, and stops
working when its token is removed from `BABELWIRE_API_TOKENS`. Failed logins are limited per
client address (`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer

from worker.config import Settings
from worker.metrics import ApiMetrics, api_registry

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
SESSION_COOKIE = "babelwire_session"
SESSION_MAX_AGE_S = 12 * 3600
LOGIN_FAILURES_ALLOWED = 5  # per client address and window, then 429
LOGIN_WINDOW_S = 300
LOGIN_CLIENTS_TRACKED = 10_000  # memory bound: the oldest client is forgotten first


@dataclass
class ApiServices:
    """What the app's routes use, opened once per app."""

    settings: Settings
    store: Any  # worker.store.Store
    celery_app: Any
    redis: Any
    registry: Any
    metrics: ApiMetrics
    templates: jinja2.Environment
    sessions: "ReviewSessions"
    login_throttle: "LoginThrottle"
    _schema_ready: bool = False
    _schema_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> "ApiServices":
        from worker.broker.server import broker_client
        from worker.celery_app import create_app as create_celery_app
        from worker.delivery.outbox import Outbox
        from worker.store import Store

        store = Store(settings.database_url)
        client = broker_client(settings, socket_connect_timeout=2, socket_timeout=5)
        registry, metrics = api_registry(client, store.counts, Outbox(store).stats)
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,  # every page shows text from outside: escape all of it
            undefined=jinja2.StrictUndefined,
        )
        return cls(settings, store, create_celery_app(settings), client, registry, metrics, templates,
                   ReviewSessions(settings.api_tokens), LoginThrottle())

    def ensure_schema(self) -> None:
        """Migrate once; a database that is down at start is migrated when it comes back."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                self.store.migrate()
                self._schema_ready = True

    def close(self) -> None:
        self.store.close()
        self.redis.close()


def get_services(request: Request) -> ApiServices:
    return request.app.state.services


def get_store(request: Request) -> Any:
    """The store, its schema current (every route that reads or writes jobs)."""
    services = get_services(request)
    services.ensure_schema()
    return services.store


# --- bearer tokens -------------------------------------------------------------------------------


def token_matches(given: str, tokens: tuple[str, ...]) -> bool:
    """Constant time in the token's content: every configured token is compared."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given.encode(), token.encode())
    return matched


bearer_scheme = HTTPBearer(auto_error=False, description="A token from BABELWIRE_API_TOKENS")


def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> None:
    tokens = get_services(request).settings.api_tokens
    if not tokens:
        return
    if credentials is None:
        raise HTTPException(401, detail="missing bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not token_matches(credentials.credentials, tokens):
        raise HTTPException(403, detail="invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


# --- review sessions ----------------------------------------------------------------------------


def _fingerprint(token: str) -> str:
    return hashlib.sha256(b"babelwire-session-token\0" + token.encode()).hexdigest()[:24]


class ReviewSessions:
    """Signed session values for the review pages' cookie (no token in the cookie)."""

    def __init__(self, tokens: tuple[str, ...]):
        key = hashlib.sha256(b"babelwire-session-key\0" + "\0".join(sorted(tokens)).encode()).hexdigest()
        self._serializer = URLSafeTimedSerializer(key, salt="babelwire-review")
        self._fingerprints = {_fingerprint(t) for t in tokens}

    def issue(self, token: str) -> str:
        return self._serializer.dumps({"t": _fingerprint(token)})

    def valid(self, value: str) -> bool:
        try:
            data = self._serializer.loads(value, max_age=SESSION_MAX_AGE_S)
        except BadSignature:  # includes SignatureExpired
            return False
        return isinstance(data, dict) and data.get("t") in self._fingerprints

    def token_fingerprint(self, value: str) -> str | None:
        """The fingerprint of the token a valid session was issued for (who corrected what)."""
        try:
            data = self._serializer.loads(value, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        fingerprint = data.get("t") if isinstance(data, dict) else None
        return fingerprint if fingerprint in self._fingerprints else None


class LoginThrottle:
    """At most LOGIN_FAILURES_ALLOWED failed logins per client address per window."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S,
                 max_clients: int = LOGIN_CLIENTS_TRACKED):
        self.allowed, self.window_s, self.max_clients = allowed, window_s, max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if t > now - self.window_s]
            if len(recent) < self.allowed:
                return 0
            return max(1, int(recent[0] + self.window_s - now) + 1)

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.pop(client, []) if t > now - self.window_s]
            self._failures[client] = [*recent, now][-self.allowed:]
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class LoginNeeded(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def require_reviewer(request: Request) -> None:
    """The review pages: a bearer header (e.g. added by a proxy) or the session cookie."""
    services = get_services(request)
    tokens = services.settings.api_tokens
    if not tokens:
        return
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        if token_matches(header[7:].strip(), tokens):
            return
        raise LoginNeeded(403, "That token is not valid.")
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        raise LoginNeeded(401, "")
    if not services.sessions.valid(session):
        raise LoginNeeded(401, "Your session has expired or was signed out; sign in again.")
