"""Structured logs: one JSON object per line, from the worker and the API.

Every line has `ts`, `level`, `logger`, `msg`, and, where known, `job_id`, `article_id` and
`stage` (clean, detect, segment, summarize, translate, load, store, task, api, ...):

    {"ts": "2026-11-28T10:00:00.123Z", "level": "INFO", "logger": "worker.metrics",
     "msg": "article finished", "job_id": "…", "article_id": "…", "stage": "task",
     "status": "done", "queue": "live", "duration_ms": 412}

What never reaches a log line:
- article text: nothing of ours logs it, and fields come from a whitelist (`FIELDS`), so the
  `data` that Celery attaches to its own records (the task's args and kwargs, i.e. the
  article) is dropped — only its task id is kept, as `job_id`;
- secrets: the configured API tokens and the passwords of the broker/database URLs are
  replaced by `***` wherever they appear, as is any `user:password@` in a URL and any
  `Bearer <token>`.

Fields come from three places, later ones winning: the context bound with `bind()` (the
API binds a request id, the worker the job of the running task), the stage implied by the
logger's module (`pipeline.clean` → clean), and `extra={...}` on the call itself.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

# Record attributes that may appear in a line (everything else a record carries is dropped).
FIELDS = (
    "job_id", "article_id", "external_id", "stage", "queue", "status", "duplicate", "task_id",
    "request_id", "method", "route", "path", "status_code", "duration_ms", "timings_ms",
    "models", "model", "error", "port", "host", "accepted", "duplicates", "rejected",
)

# Logger name prefix → pipeline stage, for lines of code that knows nothing of our context.
STAGE_OF_LOGGER = (
    ("pipeline.clean", "clean"),
    ("pipeline.detect", "detect"),
    ("pipeline.segment", "segment"),
    ("pipeline.extractive", "summarize"),
    ("models.summarization", "summarize"),
    ("models.translation", "translate"),
    ("models.memory", "translate"),
    ("models.loader", "load"),
    ("models.engines", "load"),
    ("worker.store", "store"),
    ("tasks.", "task"),
    ("worker.api", "api"),
    ("uvicorn", "api"),
)

_context: ContextVar[dict[str, Any]] = ContextVar("babelwire_log_context", default={})

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@/\s]+@")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def bind_context(**fields: Any) -> Token[dict[str, Any]]:
    """Add fields to every line logged from this thread/task until `unbind_context(token)`."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind_context(token: Token[dict[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    token = bind_context(**fields)
    try:
        yield
    finally:
        unbind_context(token)


def secrets_of(settings: Any) -> list[str]:
    """The strings no log line may contain: API tokens and the passwords in service URLs."""
    found = [t for t in getattr(settings, "api_tokens", ()) if t]
    for name in ("broker_url", "result_backend", "database_url"):
        url = getattr(settings, name, None)
        if isinstance(url, str):
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.append(password)
    return found


def redact(text: str, secrets: Sequence[str]) -> str:
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _BEARER.sub(r"\1***", text)
    for secret in secrets:
        if len(secret) >= 4:  # a 1–3 character "secret" would blank out ordinary words
            text = text.replace(secret, "***")
    return text


def _stage_of(logger_name: str) -> str | None:
    for prefix, stage in STAGE_OF_LOGGER:
        if logger_name.startswith(prefix):
            return stage
    return None


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (see the module docstring for the fields)."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        # as written and as a JSON string escapes it; longest first, so a secret that
        # contains another is replaced whole
        forms = {form for secret in secrets for form in (secret, json.dumps(secret, ensure_ascii=False)[1:-1])}
        self.secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_context.get())
        stage = _stage_of(record.name)
        if stage is not None:
            line["stage"] = stage
        celery_data = getattr(record, "data", None)
        if isinstance(celery_data, dict) and isinstance(celery_data.get("id"), str):
            line.setdefault("job_id", celery_data["id"])  # Celery's own task lines: only the id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # redacted as a whole, so that no field (an exception's text included) escapes it
        return redact(json.dumps(line, ensure_ascii=False, default=str), self.secrets)


def use_json_format(logger: logging.Logger, secrets: Iterable[str]) -> None:
    """Give every handler of `logger` the JSON formatter (Celery sets up its own handlers)."""
    formatter = JsonFormatter(secrets)
    for handler in logger.handlers:
        handler.setFormatter(formatter)


def configure_logging(settings: Any, stream: Any = None) -> None:
    """JSON lines on stderr for this process (the API; the worker goes through Celery's
    logging setup, see `worker.metrics`), at `settings.log_level`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets_of(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(str(settings.log_level).upper())
    # uvicorn's loggers: through the root handler, not their own plain-text ones
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
