"""What a queue item must be before any of it reaches kombu or Celery.

A Redis queue item is a kombu JSON envelope (`body`, `headers`, `properties` ...); the body of
ours is a Celery protocol-2 task message for `babelwire.process_article`. Anything else —
bytes that are not JSON, JSON nested deeper than `MAX_DEPTH`, another shape, another task,
a content type or header Celery would trip over, an ETA further ahead than `max_eta_s` — is
refused here with a reason (`RefusedItem`), and the transport moves it to the dead-letter
list. Every decode uses `pipeline.safe_json` (nesting bounded before decoding: Python's
decoder would otherwise raise RecursionError, which nothing in Celery expects).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipeline import safe_json
from pipeline.exceptions import JSONDepthError
from worker.broker.exceptions import RefusedItem

MAX_DEPTH = 32  # an envelope nests 3 levels, a task body about 6; the claim script checks the same
MAX_TASK_ID_CHARS = 64  # a task id is the job's id: jobs.id is VARCHAR(64)


@dataclass(frozen=True)
class EnvelopePolicy:
    """What a task queue accepts."""

    task_names: frozenset[str]
    max_eta_s: float  # how far ahead of now a message's ETA may lie
    max_depth: int = MAX_DEPTH


def decode_item(raw: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A queue item → its envelope (a dict), or RefusedItem."""
    try:
        message = safe_json.loads(raw, max_depth=max_depth)
    except JSONDepthError as exc:
        raise RefusedItem(str(exc)) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RefusedItem(f"not JSON ({type(exc).__name__})") from None
    problem = envelope_problem(message)
    if problem is not None:
        raise RefusedItem(problem)
    return message


def decode_unacked(raw: bytes | str, max_depth: int = MAX_DEPTH) -> tuple[dict[str, Any], str, str]:
    """An unacked-hash record (kombu writes `[envelope, exchange, routing key]`) → its parts,
    or RefusedItem."""
    try:
        record = safe_json.loads(raw, max_depth=max_depth + 1)
    except JSONDepthError as exc:
        raise RefusedItem(str(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise RefusedItem(f"not JSON ({type(exc).__name__})") from None
    if not (isinstance(record, list) and len(record) == 3 and all(isinstance(x, str) for x in record[1:])):
        raise RefusedItem("not an unacked record [message, exchange, routing key]")
    problem = envelope_problem(record[0])
    if problem is not None:
        raise RefusedItem(problem)
    return record[0], record[1], record[2]


def envelope_problem(message: Any) -> str | None:
    """Why a decoded queue item cannot be a kombu message, or None if it has the right shape."""
    if not isinstance(message, dict):
        return f"a JSON {type(message).__name__}, not an object"
    properties = message.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return "no properties.delivery_tag string"
    if not isinstance(properties.get("delivery_info"), dict):  # kombu reads it with [] (a KeyError)
        return "properties.delivery_info is not an object"
    if not isinstance(message.get("body", ""), str):
        return "body is not a string"
    if not isinstance(message.get("headers"), dict):  # kombu sets `redelivered` in it
        return "headers is not an object"
    return None


def task_message_problem(message: dict[str, Any], policy: EnvelopePolicy, now: datetime | None = None) -> str | None:
    """Why an envelope on a task queue is not a babelwire task message we run, or None.

    Checked before Celery sees it: the task name (only ours: Celery's built-in tasks such as
    `celery.chord_unlock` or `celery.backend_cleanup` are registered in every worker and
    would otherwise run from the queue); the content type and compression (refused before
    anything is decoded); the protocol-2 headers Celery uses after it has reserved a pool
    slot (a wrong `timelimit` there raises outside Celery's error handling and the slot is
    never given back); the body's nesting; and the ETA (a far-future ETA is held by a worker
    until then, and handed out again each time its lease lapses)."""
    headers = message.get("headers") or {}
    if message.get("content-type") != "application/json":
        return f"content type {str(message.get('content-type'))[:80]!r}: JSON only"
    if "compression" in headers:
        # kombu would decompress it in the worker's main process: a small bomb, a dead worker
        return "compressed messages are not accepted"
    if "task" not in headers:
        return "no task header (not a Celery protocol 2 task message)"
    task = headers["task"]
    if task not in policy.task_names:
        shown = task[:80] if isinstance(task, str) else type(task).__name__
        return f"task {shown!r} is not run by this worker (only {', '.join(sorted(policy.task_names))})"
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= MAX_TASK_ID_CHARS:
        return f"headers.id must be a string of 1 to {MAX_TASK_ID_CHARS} characters"
    timelimit = headers.get("timelimit")
    if timelimit is not None and not (
        isinstance(timelimit, list) and len(timelimit) == 2 and all(_seconds_or_none(t) for t in timelimit)
    ):
        return "headers.timelimit must be [hard, soft] in seconds (or null each)"
    retries = headers.get("retries")
    if retries is not None and (type(retries) is not int or retries < 0):
        return "headers.retries must be a non-negative integer"
    for name in ("eta", "expires"):
        if headers.get(name) is not None and _iso_datetime(headers[name]) is None:
            return f"headers.{name} must be an ISO 8601 date and time"
    problem = _body_problem(message, policy.max_depth)
    if problem is not None:
        return problem
    if headers.get("eta") is not None:
        eta = _iso_datetime(headers["eta"])
        assert eta is not None
        ahead = (eta - (now or datetime.now(timezone.utc))).total_seconds()
        if ahead > policy.max_eta_s:
            return f"headers.eta lies {ahead:.0f} s ahead; at most {policy.max_eta_s:g} s is accepted"
    return None


def _body_problem(message: dict[str, Any], max_depth: int) -> str | None:
    body = message.get("body", "")
    if (message.get("properties") or {}).get("body_encoding") == "base64":
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return "body is not base64 of UTF-8 text"
    if safe_json.nesting_depth(body, stop_after=max_depth) > max_depth:
        return f"body nested deeper than {max_depth} levels"
    return None


def _iso_datetime(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    # Celery reads a naive ETA in the app's time zone, UTC here
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _seconds_or_none(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and 0 < value < float("inf"))
