"""Poison on the broker: no item on a queue or in the unacked hash can stop a worker.

Bytes that are not a babelwire task message are logged (reason and size, never the body) and
moved to the capped dead-letter list `babelwire.dead`, together with their unacked record, so
they are never seen again. Before this, `"[" * 100000` on `live` killed the running worker
(RecursionError in kombu's decode), and an envelope nested ~990 deep — which Redis's Lua JSON
accepts, so the claim recorded it as unacked — killed every worker that started afterwards,
at its first restore sweep.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import TASK, envelope, task_body, toy_articles, wait_for
from worker.broker.dead_letter import DEAD_LETTER_KEY, parse_entry
from worker.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

BODY_MARKER = "POISON-BODY-MARKER"  # inside every bad item's body: must never reach a log


def deep_extra_field_envelope() -> bytes:
    """A good task envelope plus a field nested 990 deep: Lua's cjson decodes it (limit 1000),
    Python's json does not (RecursionError)."""
    good = json.loads(envelope(task_body(kwargs={"article": {"id": "deep", "text": "Fine text."}}),
                               task_id="deep-extra-field"))
    text = json.dumps({**good, "extra": "@@"})
    return text.replace('"@@"', "[" * 990 + json.dumps(BODY_MARKER) + "]" * 990).encode()


def unacked_garbage(suffix: str) -> dict[str, bytes]:
    """delivery tag → an unacked record no worker can restore."""
    good = json.loads(envelope(task_body(kwargs={"article": {"id": "u", "text": "Fine."}}), task_id=f"u-{suffix}"))
    return {
        f"deep-{suffix}": b"[" + b"[" * 5000 + json.dumps(BODY_MARKER).encode() + b"]" * 5000 + b', "", "live"]',
        f"not-json-{suffix}": b"\xff\xfe" + BODY_MARKER.encode() + b" {[",
        f"not-a-record-{suffix}": json.dumps({"body": BODY_MARKER}).encode(),
        f"not-an-envelope-{suffix}": json.dumps([{"body": BODY_MARKER}, "", "live"]).encode(),
        f"elsewhere-{suffix}": json.dumps([good, "", "some-other-list"]).encode(),
    }


def plant_unacked(client: redis.Redis, records: dict[str, bytes]) -> None:
    """As if a worker had held them and died long ago (index score 0: past any lease)."""
    for tag, record in records.items():
        client.hset("unacked", tag, record)
        client.zadd("unacked_index", {tag: 0})


def dead_letters(client: redis.Redis) -> list[tuple[Any, bytes]]:
    return [parse_entry(raw) for raw in client.lrange(DEAD_LETTER_KEY, 0, -1)]


def send_good(redis_url: str, task_id: str, seed: int) -> None:
    site = Celery(broker=redis_url)
    try:
        site.send_task(TASK, kwargs={"article": toy_articles(1, seed=seed)[0]}, queue="live", task_id=task_id)
    finally:
        site.close()


def processed(store: Store, task_id: str) -> bool:
    job = store.job(task_id)
    return job is not None and job.status in ("done", "partial", "failed")  # ran (no models here)


def test_poison_on_queues_and_in_the_unacked_hash_goes_to_the_dead_letter_list_and_stops_no_worker(
    tmp_path: Path, redis_url: str, workers: WorkerFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'babelwire.db'}"
    store = Store(url)
    store.migrate()
    client = redis.Redis.from_url(redis_url)
    env = {**make_service_env(tmp_path, url, redis_url), "BABELWIRE_TASK_SOFT_TIME_LIMIT": "2",
           "BABELWIRE_TASK_TIME_LIMIT": "3", "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "4"}
    try:
        first = workers.start(env, "--pool", "prefork", "--concurrency", "1")
        main_pid = first.proc.pid
        on_queue = {
            "deep-array": ("[" * 100_000 + "]" * 100_000).encode(),
            "deep-extra-field": deep_extra_field_envelope(),
            "not-json": b"hello " + BODY_MARKER.encode(),
        }
        for item in on_queue.values():
            client.lpush("live", item)
        garbage = unacked_garbage("a")
        plant_unacked(client, garbage)

        send_good(redis_url, "good-after-poison", seed=81)
        wait_for(lambda: processed(store, "good-after-poison"), 90, "a good article after the poison",
                 context=lambda: first.log[-6000:])
        assert first.alive() and first.proc.pid == main_pid, first.log[-6000:]
        # the worker's restore sweep moves the unacked garbage aside (lease lapsed long ago)
        wait_for(lambda: client.llen(DEAD_LETTER_KEY) >= len(on_queue) + len(garbage), 60,
                 "every bad item in the dead-letter list", context=lambda: first.log[-6000:])
        assert first.alive()

        # a fresh worker starts with more garbage waiting for its first restore sweep
        first.stop()
        more = unacked_garbage("b")
        plant_unacked(client, more)
        second = workers.start(env, "--pool", "prefork", "--concurrency", "1")
        send_good(redis_url, "good-for-fresh-worker", seed=82)
        wait_for(lambda: processed(store, "good-for-fresh-worker"), 90, "a fresh worker processes a good article",
                 context=lambda: second.log[-6000:])
        wait_for(lambda: client.hlen("unacked") == 0, 30, "the unacked hash emptied",
                 context=lambda: second.log[-6000:])
        assert second.alive(), second.log[-6000:]

        letters = dead_letters(client)
        items = sorted(item for _, item in letters)
        assert items == sorted([*on_queue.values(), *garbage.values(), *more.values()])  # byte for byte
        by_item = {item: letter for letter, item in letters}
        assert {by_item[i].source for i in on_queue.values()} == {"queue"}
        assert {by_item[i].source for i in [*garbage.values(), *more.values()]} == {"unacked"}
        assert all(letter.reason and letter.at > 0 for letter, _ in letters)
        assert "nested deeper" in by_item[on_queue["deep-extra-field"]].reason
        assert client.llen("live") == 0 and client.zcard("unacked_index") == 0
        for log in (first.log, second.log):
            assert BODY_MARKER not in log
            assert log.count(DEAD_LETTER_KEY) >= 1  # each refusal logged, by reason
    finally:
        client.close()
        store.close()
        workers.stop_all()


def test_the_dead_letter_list_is_capped(tmp_path: Path, redis_url: str, workers: WorkerFactory) -> None:
    url = f"sqlite:///{tmp_path / 'babelwire.db'}"
    Store(url).migrate()
    client = redis.Redis.from_url(redis_url)
    env = {**make_service_env(tmp_path, url, redis_url), "BABELWIRE_BROKER_DEAD_LETTER_MAX": "5"}
    try:
        worker = workers.start(env, "--pool", "solo")
        for i in range(12):
            client.lpush("live", f"garbage {i} {uuid.uuid4()}")
        wait_for(lambda: client.llen("live") == 0, 30, "the garbage consumed", context=lambda: worker.log[-4000:])
        time.sleep(0.2)
        newest = [item for _, item in dead_letters(client)]
        assert [int(item.split()[1]) for item in newest] == [11, 10, 9, 8, 7]
        assert worker.alive()
    finally:
        client.close()
        workers.stop_all()
