"""A worker that dies the instant after it takes a message from Redis loses nothing.

kombu's Redis transport pops a message with BRPOP and only then, from the worker, records it
in the `unacked` hash that Redis hands messages out again from. A worker killed between the
two lost the message for good. babelwire's channel claims atomically (pop and record in one
Lua script): these tests kill a real consumer process exactly in that gap — in kombu's own
`QoS.append`, the edge we do not own — and check where the message is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Callable

import pytest
import redis

from worker.celery_app import create_app
from worker.queues import LIVE
from worker.config import Settings

pytestmark = [pytest.mark.faults]

VISIBILITY_TIMEOUT_S = 3

# Consumes from `live` and dies (exit 3) where kombu would record the message as unacked.
DIE_BEFORE_KOMBU_RECORDS = """
import os, sys
from kombu.transport import redis as kombu_redis
from worker.celery_app import create_app
from worker.queues import LIVE
from worker.config import Settings

app = create_app(Settings(broker_url=sys.argv[1], database_url="sqlite://", task_soft_time_limit=1,
                          task_time_limit=2, broker_visibility_timeout=int(sys.argv[2])))
kombu_redis.QoS.append = lambda self, message, delivery_tag: os._exit(3)
with app.connection_for_read() as connection:
    with connection.Consumer([app.amqp.queues[LIVE]], callbacks=[lambda body, message: os._exit(4)],
                             accept=["json"]):
        connection.drain_events(timeout=20)
os._exit(5)
"""


def app_for(redis_url: str) -> Any:
    return create_app(Settings(broker_url=redis_url, database_url="sqlite://", task_soft_time_limit=1,
                               task_time_limit=2, broker_visibility_timeout=VISIBILITY_TIMEOUT_S))


def drain_until(connection: Any, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        try:
            connection.drain_events(timeout=1)
        except TimeoutError:
            pass


def unacked_task_ids(client: redis.Redis) -> list[str]:
    return [json.loads(raw)[0]["headers"]["id"] for raw in client.hvals("unacked")]


def test_a_consumer_killed_between_pop_and_record_leaves_the_message_to_be_handed_out_again(
    redis_url: str,
) -> None:
    app = app_for(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        app.send_task("babelwire.process_article", kwargs={"article": {"id": "x", "text": "t"}},
                      queue=LIVE, task_id="claimed-then-killed")
        app.send_task("babelwire.process_article", kwargs={"article": {"id": "y", "text": "t"}},
                      queue=LIVE, task_id="still-queued")
        assert client.llen(LIVE) == 2

        died = subprocess.run([sys.executable, "-c", DIE_BEFORE_KOMBU_RECORDS, redis_url, str(VISIBILITY_TIMEOUT_S)],
                              capture_output=True, text=True, timeout=60)
        assert died.returncode == 3, died.stderr[-3000:]  # killed in the gap, message in hand
        # Taken off the queue, but recorded: not lost. The other message was not touched.
        assert client.llen(LIVE) == 1
        assert unacked_task_ids(client) == ["claimed-then-killed"]

        time.sleep(VISIBILITY_TIMEOUT_S + 0.5)
        received: list[str] = []

        def take(body: Any, message: Any) -> None:
            received.append(message.headers["id"])
            message.ack()

        with app.connection_for_read() as connection:
            channel = connection.default_channel
            channel.qos.restore_visible(num=10, interval=1)  # what a live worker's sweep does
            with connection.Consumer([app.amqp.queues[LIVE]], callbacks=[take], accept=["json"], channel=channel):
                drain_until(connection, lambda: len(received) == 2, 20)
        # each message exactly once: the restored one and the one that never left the queue
        assert sorted(received) == ["claimed-then-killed", "still-queued"]
        assert client.llen(LIVE) == 0 and client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
    finally:
        client.close()
        app.close()


def test_an_idle_consumer_claims_messages_that_arrive_later_on_either_queue(redis_url: str) -> None:
    """The claim cannot block the way BRPOP did: an idle consumer waits on the live queue
    without taking from it (BLMOVE onto itself), and claims what arrives there; a bulk
    message is claimed when that wait times out. Each is recorded while in hand and acked."""
    from worker.queues import BULK
    app = app_for(redis_url)
    client = redis.Redis.from_url(redis_url)
    received: list[str] = []

    def take(body: Any, message: Any) -> None:
        assert unacked_task_ids(client) == [message.headers["id"]]  # recorded while in hand
        received.append(message.headers["id"])
        message.ack()

    try:
        with app.connection_for_read() as connection:
            with connection.Consumer([app.amqp.queues[LIVE], app.amqp.queues[BULK]], callbacks=[take],
                                     accept=["json"]):
                with pytest.raises(TimeoutError):
                    connection.drain_events(timeout=0.3)  # nothing there yet
                app.send_task("babelwire.process_article", kwargs={"article": {"id": "z", "text": "t"}},
                              queue=LIVE, task_id="late")
                connection.drain_events(timeout=10)
                assert client.llen(LIVE) == 0  # the wait moved nothing anywhere: the claim took it
                app.send_task("babelwire.process_article", kwargs={"article": {"id": "w", "text": "t"}},
                              queue=BULK, task_id="late-bulk")
                drain_until(connection, lambda: len(received) == 2, 10)
        assert received == ["late", "late-bulk"]
        assert client.hlen("unacked") == 0
    finally:
        client.close()
        app.close()


def test_a_consumer_that_does_not_ack_leaves_no_unacked_record(redis_url: str) -> None:
    """The claim records every message it pops; a no_ack consumer (Celery's remote-control
    replies) never holds one, so the record is removed, or it would come back each time its
    lease lapsed."""
    app = app_for(redis_url)
    client = redis.Redis.from_url(redis_url)
    received: list[str] = []
    try:
        app.send_task("babelwire.process_article", kwargs={"article": {"id": "n", "text": "t"}},
                      queue=LIVE, task_id="no-ack")
        with app.connection_for_read() as connection:
            with connection.Consumer([app.amqp.queues[LIVE]], no_ack=True, accept=["json"],
                                     callbacks=[lambda body, message: received.append(message.headers["id"])]):
                drain_until(connection, lambda: bool(received), 10)
        assert received == ["no-ack"]
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0 and client.llen(LIVE) == 0
    finally:
        client.close()
        app.close()
