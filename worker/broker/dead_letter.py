"""The dead-letter list: where refused queue items go instead of being dropped or retried.

Anything on a queue or in the unacked hash that is not a babelwire task message (not JSON,
nested too deep, the wrong shape, another task's name, an ETA too far ahead, ...) is moved
here in one atomic step, together with the removal of its unacked record, so it can never
come back and never stop a worker. The list is capped (`LTRIM`) at the newest
`BABELWIRE_BROKER_DEAD_LETTER_MAX` entries.

An entry is one line of JSON about the item, a newline, then the item's bytes exactly as
they were found: `redis-cli LRANGE babelwire.dead 0 9` shows why, and the item can be read
back byte for byte (`parse_entry`). Logs name the reason and size, never the body.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEAD_LETTER_KEY = "babelwire.dead"
DEAD_LETTER_MAX = 10_000

# KEYS: dead-letter list, unacked hash, unacked index; ARGV: entry, max length, delivery tag
# ("" when the item was never recorded as unacked).
PUSH_SCRIPT = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[2], ARGV[3])
end
return 1
"""


@dataclass(frozen=True)
class DeadLetter:
    """What we know about a refused item (the JSON line of its entry)."""

    source: str  # "queue" (popped from a queue list) or "unacked" (found in the unacked hash)
    queue: str
    reason: str
    at: float


def entry(letter: DeadLetter, item: bytes) -> bytes:
    meta = {"at": letter.at, "source": letter.source, "queue": letter.queue, "reason": letter.reason}
    return json.dumps(meta).encode() + b"\n" + item


def parse_entry(raw: bytes) -> tuple[DeadLetter, bytes]:
    """An entry of the list → (what we recorded about the item, the item's exact bytes)."""
    head, _, item = raw.partition(b"\n")
    meta = json.loads(head)
    return DeadLetter(str(meta["source"]), str(meta["queue"]), str(meta["reason"]), float(meta["at"])), item


def log_refused(letter: DeadLetter, size: int, task_id: str | None = None) -> None:
    """One ERROR line per refused item: where, why, how big (never its body)."""
    where = f"queue {letter.queue}" if letter.source == "queue" else "the unacked hash"
    log.error("refused %s from %s (%d bytes): %s; moved to %s", f"message {task_id}" if task_id else "an item",
              where, size, letter.reason, DEAD_LETTER_KEY, extra={"task_id": task_id})


def push(pipe: Any, keys: tuple[str, str, str], letter: DeadLetter, item: bytes, max_length: int,
         tag: str | None) -> None:
    """Queue the move on a Redis client or pipeline: the entry in, the list trimmed, the
    unacked record (when `tag`) out, atomically. `keys` are (dead, unacked, index), prefixed."""
    pipe.eval(PUSH_SCRIPT, 3, *keys, entry(letter, item), max_length, tag or "")
