"""The task queues, and how a message's queue is read.

Redis has no message priorities, so the queue is the priority: `live` (a news site, the API)
is always claimed before `bulk` (CLI batches). The order of QUEUES is the claim order.
"""

from __future__ import annotations

from typing import Any, Mapping

LIVE, BULK = "live", "bulk"
QUEUES = (LIVE, BULK)  # consumption order = priority order


def message_queue(delivery_info: Mapping[str, Any] | None) -> str:
    """The queue a delivered message was taken from. The transport sets its routing key to
    that queue (whatever the message claimed), so this is one of QUEUES."""
    queue = (delivery_info or {}).get("routing_key")
    return queue if queue in QUEUES else LIVE
