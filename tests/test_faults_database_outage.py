"""Database outage: PostgreSQL stops mid-batch (an immediate shutdown, as in a crash or a
failover) and comes back some seconds later.

The test runs a PostgreSQL cluster of its own (`initdb` + `pg_ctl` in a temp dir, free port);
the machine's shared server is never stopped. The article that was running when the database
went away cannot store its result: the task retries with exponential backoff and jitter, and
so does every message taken while the database is down. Nothing may be lost, nothing stored
twice, and the job that was cut short shows its second attempt.

tests/test_worker_e2e.py rides one article through a database that refuses connections; this
is the batch version, with a real server stop while an article is running.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import PostgresCluster, all_jobs, distinct_counts, toy_articles, wait_for, write_jsonl
from worker.store import RUNNING, Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

N_ARTICLES = 30
DOWN_S = 6
RETRY_LINE = re.compile(r"message (\S+): transient fault \(.*?\); retry (\d+) in ([\d.]+) s")


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_a_postgresql_outage_mid_batch_is_retried_with_backoff_and_loses_nothing(
    tmp_path: Path, cluster: PostgresCluster, redis_url: str, workers: WorkerFactory, toy_models_dir: Path,
    cli: Any,
) -> None:
    url = cluster.create_database("babelwire")
    store = Store(url)
    try:
        env = {**make_service_env(tmp_path, url, redis_url), "BABELWIRE_MODELS_DIR": str(toy_models_dir),
               "BABELWIRE_TASK_SOFT_TIME_LIMIT": "10", "BABELWIRE_TASK_TIME_LIMIT": "12",
               "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "60"}  # retries back off up to 15 s
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
        wait_for(lambda: "transient fault" in worker.log, 60, "the worker to meet the outage",
                 context=lambda: worker.log[-4000:])
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - stopped_at)))
        assert worker.alive()
        cluster.start()

        wait_for(lambda: len(jobs_by_status().get("done", [])) == N_ARTICLES, 180, "every article done",
                 context=lambda: worker.log[-4000:])
        jobs = all_jobs(store)
        expected = {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * 6}
        assert store.row_counts() == expected and distinct_counts(store) == expected

        retries: dict[str, list[tuple[int, float]]] = {}
        for message_id, number, delay in RETRY_LINE.findall(worker.log):
            retries.setdefault(message_id, []).append((int(number), float(delay)))
        assert retries, worker.log[-4000:]
        for message_id, attempts in retries.items():
            numbers = [n for n, _ in attempts]
            delays = [d for _, d in attempts]
            assert numbers == list(range(1, len(numbers) + 1)), (message_id, attempts)
            assert delays == sorted(delays) and 1 <= delays[0] <= 2, (message_id, attempts)  # 2 s step, jittered
        # the outage lasted longer than the first retry of the first message to meet it
        assert max(len(a) for a in retries.values()) >= 2, retries

        # the article cut short claimed its job twice; one that met the outage before it was
        # claimed, once; the database saw no other attempt
        attempts = {j.id: j.attempts for j in jobs}
        assert sorted(set(attempts.values())) == [1, 2], attempts
        assert all(job_id in retries for job_id, n in attempts.items() if n == 2)
        print(f"\nRESULT database_outage {DOWN_S} s down: {len(retries)} messages retried, "
              f"at most {max(len(a) for a in retries.values())} times; jobs with 2 attempts: "
              f"{sum(n == 2 for n in attempts.values())}")
        assert worker.alive()
    finally:
        store.close()
        workers.stop_all()
