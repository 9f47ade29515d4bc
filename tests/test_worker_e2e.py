"""The service end to end: `babelwire enqueue` → Redis → `babelwire worker` → SQL store → `export`,
with real Redis, real SQLite/PostgreSQL (every test runs on both) and real worker processes."""

from __future__ import annotations

import json
import pickle
import random
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.conftest import PG_ADMIN_URL, WorkerFactory, create_pg_database, drop_pg_database, make_service_env
from tests.faults_support import all_jobs as jobs, toy_articles, wait_for, write_jsonl
from tests.fixtures.build_models import toy_article
from worker.store import Store


def broker_and_jobs(redis_url: str, store: Store, at_kill: dict[str, tuple[str, int]]) -> str:
    """What a timed-out fault test needs to say: where the unfinished jobs' messages are."""
    client = redis.Redis.from_url(redis_url)
    try:
        unacked = [json.loads(v)[0]["headers"]["id"] for v in client.hvals("unacked")]
    finally:
        client.close()
    unfinished = [(j.id, j.status, j.attempts, j.error, at_kill.get(j.id)) for j in jobs(store)
                  if j.status not in ("done", "partial")]
    return (f"queues {queue_lengths(redis_url)}, unacked {unacked}, "
            f"unfinished (id, status, attempts, error, at kill) {unfinished}")


def queue_lengths(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return {q: client.llen(q) for q in ("live", "bulk")}
    finally:
        client.close()


@pytest.fixture
def store(service_env: dict[str, str]):
    s = Store(service_env["BABELWIRE_DATABASE_URL"])
    s.migrate()
    yield s
    s.close()


def test_forty_articles_end_done_in_every_target_and_export_one_line_each(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, cli: Any, cli_in_process: Any,
    store: Store,
) -> None:
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir)}
    articles = toy_articles(40, seed=1)
    path = write_jsonl(tmp_path / "forty.jsonl", articles)
    workers.start(env)
    # the real entry point once (a subprocess); the other commands run in-process
    run = cli(["enqueue", str(path), "--to", "qaa,qab", "--wait", "--timeout", "180", "--json"], env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["accepted"] == 40 and report["duplicates"] == 0 and report["rejected"] == []
    assert (report["done"], report["partial"], report["failed"]) == (40, 0, 0)
    assert len(set(report["job_ids"])) == 40

    exported = cli_in_process(["export"], env)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(l) for l in exported.stdout.splitlines()]
    assert len(lines) == 40
    assert sorted(r["external_id"] for r in lines) == sorted(a["id"] for a in articles)
    for r in lines:
        assert r["status"] == "done" and r["job_id"] in report["job_ids"]
        assert set(r["summary"]) >= {"en", "qaa", "qab"} and all(r["summary"].values())
        assert set(r["title"]) >= {"en", "qaa", "qab"}
        assert r["models"]["qaa"] == "toy-en-qaa" and r["models"]["qab"] == "toy-en-qab"
        assert r["source_lang"] == "en" and r["errors"] == {}

    only = cli_in_process(["export", "--lang", "qab", "-o", str(tmp_path / "qab.jsonl")], env)
    assert only.returncode == 0, only.stderr
    qab = [json.loads(l) for l in (tmp_path / "qab.jsonl").read_text().splitlines()]
    assert len(qab) == 40 and all(set(r["summary"]) == {"qab"} for r in qab)

    status = cli_in_process(["status", "--json"], env)
    assert json.loads(status.stdout)["counts"]["done"] == 40
    one = cli_in_process(["status", report["job_ids"][0], "--json"], env)
    assert json.loads(one.stdout)["job_id"] == report["job_ids"][0]
    assert store.row_counts() == {"articles": 40, "jobs": 40, "texts": 40 * 6}


def test_a_threads_worker_batches_bulk_articles_across_tasks(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, cli_in_process: Any,
    store: Store,
) -> None:
    from tests.api_server import free_port, sample, scrape, wait_until
    from tests.fixtures.build_models import EN_TO_QAA, expected_translation

    n, port = 24, free_port()
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab",
           "BABELWIRE_BATCH_ARTICLES": "8", "BABELWIRE_BATCH_WINDOW_MS": "200", "BABELWIRE_METRICS_PORT": str(port)}
    articles = toy_articles(n, seed=11)
    run = cli_in_process(["enqueue", str(write_jsonl(tmp_path / "batch.jsonl", articles)), "--queue", "bulk", "--json"], env)
    assert run.returncode == 0, run.stderr
    workers.start(env, "--pool", "threads", "--concurrency", "8")
    wait_for(lambda: sum(j.status in ("done", "partial", "failed") for j in jobs(store)) == n, 120, "the batch")

    exported = [json.loads(line) for line in cli_in_process(["export"], env).stdout.splitlines()]
    assert sorted(r["external_id"] for r in exported) == sorted(a["id"] for a in articles)
    for r in exported:  # each article got its own result, exactly
        assert r["status"] == "done", r["errors"]
        assert r["summary"]["qaa"] == expected_translation(r["summary"]["en"], EN_TO_QAA)
        assert r["title"]["qaa"] == expected_translation(r["title"]["en"], EN_TO_QAA)
    assert store.row_counts() == {"articles": n, "jobs": n, "texts": n * 6}
    assert all(j.attempts == 1 for j in jobs(store))

    metrics = wait_until(
        lambda: (m := scrape(f"http://127.0.0.1:{port}/metrics")) and sample(m, "babelwire_batched_articles_total") == n and m,
        30, "the batch counters",
    )
    batches = sample(metrics, "babelwire_article_batches_total")
    assert 0 < batches < n / 2, f"{n} articles in {batches} batches: they were not batched"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_batching_on_a_pool_that_cannot_batch_is_pointed_out(service_env: dict[str, str], workers: WorkerFactory) -> None:
    worker = workers.start({**service_env, "BABELWIRE_BATCH_ARTICLES": "4"}, "--pool", "prefork", "--concurrency", "1")
    assert "BABELWIRE_BATCH_ARTICLES=4 wants `-P threads` with concurrency >= 4" in worker.log


def test_the_same_file_twice_is_all_duplicates_and_nothing_is_processed_again(
    tmp_path: Path, service_env: dict[str, str], workers: WorkerFactory, cli_in_process: Any, store: Store, redis_url: str
) -> None:
    path = write_jsonl(tmp_path / "twice.jsonl", toy_articles(12, seed=2))
    workers.start(service_env)
    first = cli_in_process(["enqueue", str(path), "--wait", "--timeout", "120", "--json"], service_env)
    assert first.returncode == 0, first.stderr
    first_report = json.loads(first.stdout)
    assert first_report["accepted"] == 12
    # no models in this store: extractive summary, and de/fr fail → partial (a success)
    assert first_report["partial"] == 12
    rows_before = store.row_counts()

    second = cli_in_process(["enqueue", str(path), "--wait", "--timeout", "60", "--json"], service_env)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["accepted"] == 0 and report["duplicates"] == 12
    assert report["job_ids"] == first_report["job_ids"]
    assert queue_lengths(redis_url) == {"live": 0, "bulk": 0}  # nothing was sent
    time.sleep(1.0)
    assert all(j.attempts == 1 for j in jobs(store))  # nothing ran twice
    assert store.row_counts() == rows_before


def test_mixed_good_and_malformed_lines(
    tmp_path: Path, service_env: dict[str, str], workers: WorkerFactory, cli_in_process: Any, store: Store
) -> None:
    env = {**service_env, "BABELWIRE_MAX_TEXT_CHARS": "3000"}
    good = toy_articles(4, seed=3)
    lines: list[Any] = [
        good[0],
        '{"title": "broken", "text": ',                      # 2: bad JSON
        {"title": "no body"},                                # 3: missing text
        good[1],
        {"text": ["not", "a", "string"]},                    # 5: wrong type
        {"text": "word " * 1000},                            # 6: oversize (5,000 > 3,000)
        {"text": "Fine text.", "targets": ["de", "xx"]},     # 7: unknown language
        {"text": "Fine text.", "lang": "klingon"},           # 8: unknown source language
        '["an", "array"]',                                   # 9: not an object
        good[2],
        {"text": "Fine text.", "targets": ["de"] * 3 + [f"q{c}a" for c in "abcdefghijklmnopqrs"]},  # 11: > 20
        good[3],
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)
    workers.start(env)
    run = cli_in_process(["enqueue", str(path), "--wait", "--timeout", "120", "--json"], env)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["accepted"] == 4 and report["partial"] + report["done"] == 4 and report["failed"] == 0
    rejected = {r["line"]: r["error"] for r in report["rejected"]}
    assert sorted(rejected) == [2, 3, 5, 6, 7, 8, 9, 11]
    assert "invalid JSON" in rejected[2]
    assert rejected[3].startswith("text:") and "give the body as text, or the page as html" in rejected[3]
    assert rejected[5].startswith("text:")
    assert rejected[6] == "text: at most 3,000 characters (got 5,000)"
    assert rejected[7].startswith("targets:") and "'xx'" in rejected[7]
    assert rejected[8].startswith("lang:")
    assert "JSON object" in rejected[9]
    assert rejected[11].startswith("targets:") and "at most 20" in rejected[11]
    assert store.row_counts()["jobs"] == 4

    # humans get the same, line and reason on stderr
    again = cli_in_process(["enqueue", str(path)], env)
    assert again.returncode == 1
    assert "mixed.jsonl:6: text: at most 3,000 characters (got 5,000)" in again.stderr
    assert "accepted 0, duplicates 4, rejected 8" in again.stdout


def test_messages_from_outside_malformed_ones_included_never_kill_the_worker(
    service_env: dict[str, str], workers: WorkerFactory, store: Store, redis_url: str
) -> None:
    worker = workers.start(service_env)
    news_site = Celery(broker=redis_url)
    good = toy_articles(2, seed=4)
    # exactly what docs/contracts.md promises a news site: no babelwire code needed
    news_site.send_task("babelwire.process_article", kwargs={"article": good[0]}, queue="live", task_id="site-1")
    news_site.send_task("babelwire.process_article", kwargs={"article": {"id": "x", "text": 5}}, queue="live",
                        task_id="site-bad")
    news_site.send_task("babelwire.process_article", kwargs={"article": "just a string"}, queue="live",
                        task_id="site-string")
    news_site.send_task("babelwire.process_article", kwargs={"wrong": 1}, queue="live", task_id="site-wrong")
    news_site.send_task("babelwire.process_article", args=[good[1]], queue="live", task_id="site-args")
    # pickle is refused: whoever can write to Redis must not run code in the worker
    news_site.send_task("babelwire.process_article", kwargs={"article": good[1]}, queue="live",
                        task_id="site-pickle", serializer="pickle")
    raw = redis.Redis.from_url(redis_url)
    for garbage in (b"this is not a kombu message", pickle.dumps({"body": "also not"}), b"5", b"{}",
                    b'{"body": "x", "properties": 3}', b"\xff\xfe",
                    json.dumps({"body": "!!!", "properties": {"delivery_tag": "t1", "body_encoding": "base64"},
                                "content-type": "application/json"}).encode(),
                    json.dumps({"body": "W10=", "headers": {}, "content-type": "application/json",
                                "properties": {"delivery_tag": "t2", "body_encoding": "base64",
                                               "delivery_info": {"exchange": "live", "routing_key": "live"}}}).encode()):
        raw.lpush("live", garbage)
    news_site.send_task("babelwire.process_article", kwargs={"article": good[1]}, queue="live", task_id="site-2")

    wait_for(lambda: {"site-1", "site-2"} <= {j.id for j in jobs(store) if j.status in ("done", "partial")},
             60, "the good articles")
    # The claim records whatever has a delivery tag (t1, t2) as unacked; dropped, it is
    # forgotten again, or Redis would hand it out after every visibility timeout.
    wait_for(lambda: raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0, 10, "nothing left unacked")
    raw.close()
    assert worker.alive()
    by_id = {j.id: j for j in jobs(store)}
    assert by_id["site-bad"].status == "failed" and by_id["site-bad"].error.startswith("text:")
    assert by_id["site-args"].status == "failed" and "positional" in by_id["site-args"].error
    assert "site-string" not in by_id and "site-wrong" not in by_id  # no identity: logged, dropped
    assert "site-pickle" not in by_id
    assert set(by_id) == {"site-1", "site-2", "site-bad", "site-args"}
    assert queue_lengths(redis_url)["live"] == 0
    news_site.close()


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path, service_env: dict[str, str], workers: WorkerFactory, cli_in_process: Any, store: Store, redis_url: str
) -> None:
    # a short visibility timeout, so the killed worker's unacked message comes back quickly
    env = {**service_env, "BABELWIRE_TASK_SOFT_TIME_LIMIT": "8", "BABELWIRE_TASK_TIME_LIMIT": "9",
           "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "10"}
    n = 60
    path = write_jsonl(tmp_path / "kill.jsonl", toy_articles(n, seed=5))
    run = cli_in_process(["enqueue", str(path), "--json"], env)
    assert run.returncode == 0, run.stderr
    worker = workers.start(env, "--pool", "solo")

    def finished() -> int:
        return sum(j.status in ("done", "partial") for j in jobs(store))

    wait_for(lambda: finished() >= 5, 60, "the first articles")
    worker.kill()
    at_kill = {j.id: (j.status, j.attempts) for j in jobs(store)}
    finished_at_kill = sum(s in ("done", "partial") for s, _ in at_kill.values())
    assert finished_at_kill < n, "the worker finished before it was killed: the test proves nothing"

    workers.start(env, "--pool", "solo")
    try:
        wait_for(lambda: sum(j.status in ("done", "partial", "failed") for j in jobs(store)) == n, 120,
                 "every article after the restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {broker_and_jobs(redis_url, store, at_kill)}") from None
    after = jobs(store)
    assert len(after) == n and all(j.status == "partial" for j in after), broker_and_jobs(redis_url, store, at_kill)
    assert store.row_counts() == {"articles": n, "jobs": n, "texts": n * 2}  # title + summary in en
    for j in after:
        was_status, was_attempts = at_kill[j.id]
        if was_status == "running":  # killed mid-article: delivered again, once
            assert j.attempts == was_attempts + 1
        else:
            assert j.attempts == 1
    assert queue_lengths(redis_url) == {"live": 0, "bulk": 0}


def test_live_articles_overtake_a_bulk_backlog(
    tmp_path: Path, service_env: dict[str, str], workers: WorkerFactory, cli_in_process: Any, store: Store, redis_url: str
) -> None:
    concurrency = 2
    bulk = write_jsonl(tmp_path / "bulk.jsonl", toy_articles(1000, seed=6))
    live = write_jsonl(tmp_path / "live.jsonl", toy_articles(5, seed=7))
    run = cli_in_process(["enqueue", str(bulk), "--queue", "bulk", "--json"], service_env)
    assert run.returncode == 0 and json.loads(run.stdout)["accepted"] == 1000
    assert queue_lengths(redis_url) == {"live": 0, "bulk": 1000}  # one message each, in its queue
    workers.start(service_env, "--concurrency", str(concurrency))
    wait_for(lambda: sum(j.status != "queued" for j in jobs(store)) >= 20, 60, "the worker to be busy with bulk")

    run = cli_in_process(["enqueue", str(live), "--queue", "live", "--json"], service_env)
    assert run.returncode == 0, run.stderr
    live_ids = set(json.loads(run.stdout)["job_ids"])
    wait_for(lambda: all(j.status in ("done", "partial") for j in jobs(store) if j.id in live_ids), 60,
             "the live articles")

    all_jobs = jobs(store)
    live_jobs = [j for j in all_jobs if j.id in live_ids]
    bulk_jobs = [j for j in all_jobs if j.id not in live_ids]
    assert {j.queue for j in live_jobs} == {"live"} and {j.queue for j in bulk_jobs} == {"bulk"}
    # sent_at is written once the whole batch is on the queue (a loaded machine can take a
    # while between the first and the last message of the batch)
    published = max(j.sent_at for j in live_jobs)
    last_live_start = max(j.started_at for j in live_jobs)
    # Bulk articles started after the live ones were on the queue but before the last live one
    # started: only pool slots that were already busy may do that, one bulk article each.
    overtaking = [j for j in bulk_jobs if j.started_at is not None and published < j.started_at < last_live_start]
    assert len(overtaking) <= concurrency, [j.started_at for j in overtaking]
    backlog = sum(j.status == "queued" for j in bulk_jobs)
    assert backlog > 500  # the backlog was far from drained when the live articles were done


@pytest.mark.postgres
def test_a_database_outage_is_waited_out_in_place(tmp_path: Path, redis_url: str, workers: WorkerFactory) -> None:
    import psycopg

    url = create_pg_database("bw_worker")
    name = url.rsplit("/", 1)[1]
    try:
        env = make_service_env(tmp_path, url, redis_url)
        worker = workers.start(env, "--pool", "solo")
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            # the database goes away (as in a restart or failover) ...
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            site = Celery(broker=redis_url)
            site.send_task("babelwire.process_article", kwargs={"article": toy_articles(1, seed=8)[0]},
                           queue="live", task_id="outage-1")
            site.close()
            wait_for(lambda: "store unreachable" in worker.log, 60, "the task to meet the outage")
            # ... and comes back while the task waits for its retry
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        store = Store(url)
        try:
            wait_for(lambda: (j := store.job("outage-1")) is not None and j.status == "partial", 60,
                     "the retried task")
            job = store.job("outage-1")
            assert job is not None and job.attempts == 1  # the outage hit before the job was claimed
        finally:
            store.close()
        assert worker.alive()
    finally:
        workers.stop_all()
        drop_pg_database(url)


def test_an_article_over_the_soft_time_limit_fails_with_a_readable_error(
    tmp_path: Path, redis_url: str, workers: WorkerFactory
) -> None:
    env = {**make_service_env(tmp_path, f"sqlite:///{tmp_path / 'limits.db'}", redis_url),
           "BABELWIRE_TASK_SOFT_TIME_LIMIT": "1", "BABELWIRE_TASK_TIME_LIMIT": "20"}
    workers.start(env, "--concurrency", "1")
    rng = random.Random(9)
    long_text = " ".join(toy_article(rng, 40) for _ in range(60))[:95_000]
    site = Celery(broker=redis_url)
    # its own soft limit (the message's timelimit header): segmenting ~95,000 characters takes
    # close to a second on these machines, several times this limit, but the 1 s setting not
    # reliably, now that splitting is linear
    site.send_task("babelwire.process_article", kwargs={"article": {"text": long_text, "lang": "en"}},
                   queue="live", task_id="too-long", soft_time_limit=0.2, time_limit=20)
    site.send_task("babelwire.process_article", kwargs={"article": toy_articles(1, seed=10)[0]},
                   queue="live", task_id="fine")
    site.close()
    store = Store(env["BABELWIRE_DATABASE_URL"])
    try:
        wait_for(lambda: {j.id: j.status for j in jobs(store)} == {"too-long": "failed", "fine": "partial"}, 60,
                 "both articles")
        result = store.result("too-long")
        assert result is not None and result.errors == {"job": "took longer than the soft time limit (0.2 s)"}
    finally:
        store.close()
