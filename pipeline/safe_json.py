"""JSON from outside, decoded with its nesting bounded first.

Python's decoder recurses once per nesting level: `"[" * 100000` raises RecursionError, which
no caller expects (in a worker's main process it is fatal). Every decoder of JSON we did not
write ourselves — queue items, request bodies, JSONL and JSON input files, model packages —
goes through `loads`, which measures the depth in linear time before decoding and refuses
anything deeper than `max_depth` with a `JSONDepthError` (a ValueError, like any other bad
JSON). The standard library has no depth option, hence this small module.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.exceptions import JSONDepthError

MAX_DEPTH = 64  # an article, a queue envelope or a manifest never nests past a handful

# A JSON string (its contents can hold brackets that are not structure) or one bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str, stop_after: int | None = None) -> int:
    """The deepest bracket nesting of `text`, outside strings (linear in its length). Stops
    counting once past `stop_after`. Malformed text gets a number too: the decoder judges it."""
    if text.count("[") + text.count("{") <= (stop_after or 0):
        return 0  # cannot nest deeper than it has brackets (the common case: no scan)
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing nesting deeper than `max_depth` (JSONDepthError) instead of
    raising RecursionError. Other errors are json's own (ValueError, UnicodeDecodeError)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    depth = nesting_depth(text, stop_after=max_depth)
    if depth > max_depth:
        raise JSONDepthError(depth, max_depth)
    return json.loads(text)
