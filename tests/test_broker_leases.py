"""Leases: a worker renews its hold on every message it has taken (worker/broker/lease.py).

The visibility timeout is then a lease (60 s by default) instead of an upper bound on the
longest task: a message whose worker lives is never handed out again, however long it runs,
and one whose worker died comes back within about one lease (tests/test_faults_worker_death.py
measures that at default settings).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import TASK, PostgresCluster, cluster, toy_articles, wait_for  # noqa: F401  cluster: a fixture
from worker.celery_app import create_app
from worker.config import Settings
from worker.queues import LIVE
from worker.store import Store


def received(log: str, task_id: str) -> int:
    return len(re.findall(re.escape(f"Task {TASK}[{task_id}] received"), log))


def test_a_held_message_is_not_handed_out_again_while_its_consumer_renews_the_lease(redis_url: str) -> None:
    """In process, with kombu's own restore sweep as the other worker would run it: a message
    held three times as long as the visibility timeout stays where it is."""
    vt = 3
    app = create_app(Settings(broker_url=redis_url, database_url="sqlite://", task_soft_time_limit=1,
                              task_time_limit=2, broker_visibility_timeout=vt))
    client = redis.Redis.from_url(redis_url)
    held: list[Any] = []
    try:
        app.send_task(TASK, kwargs={"article": {"id": "x", "text": "t"}}, queue=LIVE, task_id="held")
        with app.connection_for_read() as holder, app.connection_for_read() as other:
            with holder.Consumer([app.amqp.queues[LIVE]], callbacks=[lambda body, message: held.append(message)],
                                 accept=["json"]):
                holder.drain_events(timeout=10)
                assert [m.headers["id"] for m in held] == ["held"]
                sweeper = other.default_channel.qos
                deadline = time.monotonic() + 3 * vt
                while time.monotonic() < deadline:
                    sweeper.restore_visible(num=10, interval=1)  # what every other worker does
                    time.sleep(0.2)
                assert client.llen(LIVE) == 0 and client.hlen("unacked") == 1  # still held, not requeued
                held[0].ack()
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0 and client.llen(LIVE) == 0
    finally:
        client.close()
        app.close()


@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.timeout(360)
def test_a_task_running_ten_visibility_timeouts_is_never_handed_out_twice(
    tmp_path: Path, cluster: PostgresCluster, redis_url: str, workers: WorkerFactory
) -> None:
    """The long task: an article that arrives while the database is down waits in place for
    it (the task's store wait) for over 50 s, under a 5-second visibility timeout, with a second,
    idle worker sweeping for lapsed leases all along: the ratio of a 10-minute task under the
    default 60 s lease. It is received once, by one worker, and stored with one attempt."""
    url = cluster.create_database("babelwire")
    Store(url).migrate()
    env = {**make_service_env(tmp_path, url, redis_url),
           # the store wait is half the soft limit (60 s): longer than the 50 s outage below
           "BABELWIRE_TASK_SOFT_TIME_LIMIT": "120", "BABELWIRE_TASK_TIME_LIMIT": "130",
           "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "5"}
    first = workers.start(env, "--pool", "prefork", "--concurrency", "1")
    second = workers.start(env, "--pool", "prefork", "--concurrency", "1")
    cluster.stop("immediate")
    site = Celery(broker=redis_url)
    site.send_task(TASK, kwargs={"article": toy_articles(1, seed=95)[0]}, queue=LIVE, task_id="long-task")
    site.close()
    started = time.monotonic()
    wait_for(lambda: "store unreachable" in first.log + second.log, 60, "the task to wait for the store",
             context=lambda: first.log[-3000:] + second.log[-3000:])
    time.sleep(max(0.0, 50 - (time.monotonic() - started)))
    cluster.start()
    store = Store(url)
    try:
        wait_for(lambda: (job := store.job("long-task")) is not None and job.status in ("done", "partial", "failed"),
                 90, "the long task to finish", context=lambda: first.log[-3000:] + second.log[-3000:])
        ran_s = time.monotonic() - started
        assert ran_s > 10 * 5, ran_s  # it really outlived the visibility timeout ten times
        logs = first.log + second.log
        assert received(logs, "long-task") == 1, logs[-6000:]
        assert store.job("long-task").attempts == 1
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.llen(LIVE) == 0 and client.hlen("unacked") == 0
        finally:
            client.close()
        assert first.alive() and second.alive()
    finally:
        store.close()
        workers.stop_all()


@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_warm_shutdown_hands_back_at_once_what_it_will_not_run(tmp_path: Path, redis_url: str,
                                                                 workers: WorkerFactory) -> None:
    """SIGTERM: a message the worker holds but has not started (here one waiting for its ETA,
    as a retry does) is back on its queue as soon as the worker has exited, not when its
    lease (60 s) lapses."""
    url = f"sqlite:///{tmp_path / 'babelwire.db'}"
    Store(url).migrate()
    worker = workers.start(make_service_env(tmp_path, url, redis_url), "--pool", "prefork", "--concurrency", "1")
    client = redis.Redis.from_url(redis_url)
    try:
        site = Celery(broker=redis_url)
        site.send_task(TASK, kwargs={"article": toy_articles(1, seed=96)[0]}, queue=LIVE, task_id="later",
                       countdown=50)
        site.close()
        wait_for(lambda: received(worker.log, "later") == 1, 30, "the worker to hold the message")
        assert client.llen(LIVE) == 0 and client.hlen("unacked") == 1
        worker.stop()
        assert not worker.alive()
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        (item,) = client.lrange(LIVE, 0, -1)
        assert json.loads(item)["headers"]["id"] == "later"
    finally:
        client.close()
        workers.stop_all()
