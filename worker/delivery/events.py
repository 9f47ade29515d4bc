"""The event a finished job sends: its type and its body (one JSON text, signed as is).

    {"type": "article.done", "timestamp": "2026-12-01T17:00:00.123456+00:00",
     "data": { ...the job exactly as GET /v1/jobs/{id} returns it: job_id, status,
               external_id (the site's id), article_id, ..., result... }}

The same body goes to every target of the event: registered endpoints, the article's
callback_url, and (as the single argument of the Celery task `article.finished`) a result
queue. `data` is built by the API's own serialisation (`worker.api.schemas.job_document`),
so a webhook and a GET of the job can never disagree; the dispatcher renders it from the
finished job before the first attempt (`outbox.Outbox.render_payloads`) and keeps the text,
so every retry and replay sends the same bytes. `timestamp` is when the job finished.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pipeline.result import DONE, FAILED, PARTIAL

ARTICLE_DONE, ARTICLE_PARTIAL, ARTICLE_FAILED = "article.done", "article.partial", "article.failed"
EVENT_TYPES = (ARTICLE_DONE, ARTICLE_PARTIAL, ARTICLE_FAILED)
EVENT_FOR_STATUS = {DONE: ARTICLE_DONE, PARTIAL: ARTICLE_PARTIAL, FAILED: ARTICLE_FAILED}
RESULT_TASK = "article.finished"  # the Celery task name a result queue's consumers register
QUEUE_SCHEME = "celery://"  # an endpoint URL `celery://QUEUE` is a result queue


def new_event_id() -> str:
    """A Standard Webhooks message id: the same on every retry, so receivers dedupe by it."""
    return f"msg_{uuid.uuid4().hex}"


def event_body(event_type: str, at: datetime, job_document: dict[str, Any]) -> str:
    """The exact text sent (and signed). Compact JSON, UTF-8, keys in a stable order."""
    return json.dumps({"type": event_type, "timestamp": at.isoformat(), "data": job_document},
                      ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def parse_event_types(text: str | None) -> tuple[str, ...]:
    """`article.done,article.failed` → the types, checked; None or "" → all of them."""
    from worker.delivery.exceptions import EndpointError

    if not text:
        return EVENT_TYPES
    types = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown or not types:
        raise EndpointError(f"--events: unknown event type(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(EVENT_TYPES)}")
    return types
