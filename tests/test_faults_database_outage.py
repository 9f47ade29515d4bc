"""Database outage: PostgreSQL stops mid-batch (an immediate shutdown, as in a crash or a
failover) and comes back some seconds later.

The test runs a PostgreSQL cluster of its own (`initdb` + `pg_ctl` in a temp dir, free port);
the machine's shared server is never stopped. The article that was running when the database
went away cannot store its result: the task waits in place, with exponential backoff and
jitter, and its worker takes no other message meanwhile, so the backlog stays in Redis.
Nothing may be lost, nothing stored twice, nothing processed twice.

tests/test_worker_e2e.py rides one article through a database that refuses connections; this
is the batch version, with a real server stop while an article is running.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import PostgresCluster, all_jobs, cluster, distinct_counts, toy_articles, wait_for, write_jsonl  # noqa: F401  cluster: a fixture
from worker.store import RUNNING, Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

N_ARTICLES = 30
DOWN_S = 6
WAIT_LINE = re.compile(r"message (\S+): store unreachable \(.*?\); wait (\d+), ([\d.]+) s")
RETRY_LINE = re.compile(r"message (\S+): transient fault \(.*?\); retry (\d+) in ([\d.]+) s")


def queue_length(redis_url: str, queue: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return client.llen(queue)
    finally:
        client.close()


def test_a_postgresql_outage_mid_batch_is_waited_out_in_place_and_loses_nothing(
    tmp_path: Path, cluster: PostgresCluster, redis_url: str, workers: WorkerFactory, toy_models_dir: Path,
    cli: Any,
) -> None:
    url = cluster.create_database("babelwire")
    store = Store(url)
    try:
        env = {**make_service_env(tmp_path, url, redis_url), "BABELWIRE_MODELS_DIR": str(toy_models_dir),
               # a task waits up to half the soft limit (15 s) for the store, backing off up to 22 s
               "BABELWIRE_TASK_SOFT_TIME_LIMIT": "30", "BABELWIRE_TASK_TIME_LIMIT": "32",
               "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "90"}
        # long articles (~0.5 s each), so that the stop lands while one is running
        path = write_jsonl(tmp_path / "batch.jsonl", toy_articles(N_ARTICLES, seed=91, sentences=150))
        run = cli(["enqueue", str(path), "--to", "qaa,qab", "--queue", "bulk", "--json"], env)
        assert run.returncode == 0, run.stderr
        worker = workers.start(env, "--pool", "prefork", "--concurrency", "1")

        def jobs_by_status() -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {}
            for job in all_jobs(store):
                out.setdefault(job.status, []).append(job)
            return out

        # stop the database while an article is running (its result cannot be stored)
        wait_for(lambda: len(jobs_by_status().get("done", [])) >= 8, 120, "the first articles",
                 context=lambda: worker.log[-4000:])
        wait_for(lambda: bool(jobs_by_status().get(RUNNING)), 60, "an article to be running", interval=0.005)
        cluster.stop("immediate")
        store.engine.dispose()  # our own pooled connections died with the server
        stopped_at = time.monotonic()
        backlog_at_stop = queue_length(redis_url, "bulk")
        wait_for(lambda: "store unreachable" in worker.log, 60, "the worker to meet the outage",
                 context=lambda: worker.log[-4000:])
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - stopped_at)))
        assert worker.alive()
        # the worker held its one message and took no other: the backlog waited in Redis
        assert backlog_at_stop - queue_length(redis_url, "bulk") <= 1, (backlog_at_stop, worker.log[-3000:])
        cluster.start()

        wait_for(lambda: len(jobs_by_status().get("done", [])) == N_ARTICLES, 180, "every article done",
                 context=lambda: worker.log[-4000:])
        jobs = all_jobs(store)
        expected = {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * 6}
        assert store.row_counts() == expected and distinct_counts(store) == expected

        waits: dict[str, list[tuple[int, float]]] = {}
        for message_id, number, delay in WAIT_LINE.findall(worker.log):
            waits.setdefault(message_id, []).append((int(number), float(delay)))
        assert waits, worker.log[-4000:]
        for message_id, seen in waits.items():
            runs: list[list[tuple[int, float]]] = []  # one per delivery: numbering starts again
            for number, delay in seen:
                if number == 1:
                    runs.append([])
                runs[-1].append((number, delay))
            for run in runs:
                numbers, delays = [n for n, _ in run], [d for _, d in run]
                assert numbers == list(range(1, len(run) + 1)) and 1 <= delays[0] <= 2, (message_id, seen)
                # each wait grows (the last may be cut to what is left of the task's wait)
                assert delays[:-1] == sorted(delays[:-1]), (message_id, seen)
        assert max(len(w) for w in waits.values()) >= 2, waits  # the outage outlasted a first wait

        # Waited out in place: each job claimed once. Only where the restart took longer than
        # the task's wait (a very slow machine) did a message go back through the broker,
        # and then it was claimed twice, never more.
        broker_retried = {message_id for message_id, _, _ in RETRY_LINE.findall(worker.log)}
        attempts = {j.id: j.attempts for j in jobs}
        assert all(n == 1 or (n == 2 and job_id in broker_retried) for job_id, n in attempts.items()), attempts
        print(f"\nRESULT database_outage {DOWN_S} s down: {len(waits)} messages waited in place, at most "
              f"{max(len(w) for w in waits.values())} waits; broker retries: {len(broker_retried)}")
        assert worker.alive()
    finally:
        store.close()
        workers.stop_all()
