"""Broker restart: the Redis that holds the queues goes away mid-batch and comes back.

The test runs a redis-server of its own (free port, its own directory) with AOF persistence
and `appendfsync always`, puts a batch on it, starts a worker, and then takes Redis down
twice while articles are running: once with SIGKILL (a crash: only what is on disk
survives) and once with a clean SHUTDOWN. Nothing restarts the worker: it must reconnect by
itself, the messages it held must come back (unacked messages are kept in Redis and handed
out again when their lease lapses, one visibility timeout after the worker stopped renewing
it; default broker settings), and every article must end done, once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import RedisServer, all_jobs, distinct_counts, toy_articles, wait_for, write_jsonl
from worker.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

N_ARTICLES = 60
DOWN_S = 4


def done_count(store: Store) -> int:
    return sum(j.status == "done" for j in all_jobs(store))


def test_workers_ride_through_redis_restarts_and_every_article_ends_done(
    tmp_path: Path, workers: WorkerFactory, toy_models_dir: Path, cli: Any
) -> None:
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    database = f"sqlite:///{tmp_path / 'broker-restart.db'}"
    store = Store(database)
    try:
        env = {**make_service_env(tmp_path, database, broker.url),
               "BABELWIRE_MODELS_DIR": str(toy_models_dir),
               "BABELWIRE_TASK_SOFT_TIME_LIMIT": "10", "BABELWIRE_TASK_TIME_LIMIT": "12"}
        path = write_jsonl(tmp_path / "batch.jsonl", toy_articles(N_ARTICLES, seed=81, sentences=20))
        run = cli(["enqueue", str(path), "--to", "qaa,qab", "--queue", "bulk", "--json"], env)
        assert run.returncode == 0, run.stderr
        worker = workers.start(env, "--pool", "prefork", "--concurrency", "2")
        worker_pid = worker.proc.pid

        outages = []
        for done_before, how in ((10, "crash"), (30, "shutdown")):
            wait_for(lambda: done_count(store) >= done_before, 120, f"{done_before} articles done",
                     context=lambda: worker.log[-4000:])
            in_flight = sum(j.status == "running" for j in all_jobs(store))
            if how == "crash":
                broker.kill()
            else:
                client = redis.Redis(port=broker.port)
                try:
                    client.shutdown()  # redis-py raises or returns as the connection drops
                except redis.ConnectionError:
                    pass
                broker.proc.wait(timeout=30)
            down_at = done_count(store)
            time.sleep(DOWN_S)
            assert worker.alive(), "the worker died with its broker"
            broker.start()
            outages.append((how, in_flight, down_at))
            # the worker comes back by itself: work goes on after the restart
            wait_for(lambda: done_count(store) > down_at, 90, f"work after the {how}",
                     context=lambda: worker.log[-4000:])

        assert done_count(store) < N_ARTICLES, "the batch finished before the last restart: it proved nothing"
        wait_for(lambda: done_count(store) == N_ARTICLES, 180, "every article done",
                 context=lambda: worker.log[-4000:])
        print(f"\nRESULT broker_restart outages (how, articles running, done at the time): {outages}")

        assert worker.alive() and worker.proc.pid == worker_pid  # the same worker, reconnected
        assert "Cannot connect to" in worker.log or "Connection to broker lost" in worker.log
        expected = {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * 6}
        assert store.row_counts() == expected and distinct_counts(store) == expected
        client = redis.Redis(port=broker.port)
        try:
            assert client.llen("bulk") == 0 and client.llen("live") == 0
            wait_for(lambda: client.hlen("unacked") == 0, 30, "the last acks")
            assert client.config_get("appendonly")["appendonly"] == "yes"
        finally:
            client.close()
    finally:
        store.close()
        workers.stop_all()
        broker.stop()


def test_a_channel_closed_after_its_connection_was_torn_down_keeps_its_messages(redis_url: str) -> None:
    """The race the restart test can hit: Celery closes the channel of a lost connection after
    kombu has already torn the connection down. kombu's attempt to put the held messages back
    then fails with an AttributeError that used to stop the worker; now it is logged, and the
    messages wait in Redis's unacked hash until their lease lapses."""
    from worker.celery_app import create_app, send_article
    from worker.config import Settings

    app = create_app(Settings(broker_url=redis_url))
    send_article(app, {"text": "Held when the connection went away."}, task_id="held-1")
    connection = app.connection_for_write()
    channel = connection.channel()
    message = channel.basic_get("live", no_ack=False)
    assert message is not None and message.headers["id"] == "held-1"
    channel.connection.client = None  # what the torn-down connection leaves behind
    channel.close()  # raised AttributeError before worker.broker.transport.GuardedQoS
    connection.release()
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hlen("unacked") == 1 and client.llen("live") == 0
    finally:
        client.close()
