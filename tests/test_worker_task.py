"""The task and the app's delivery settings, run in-process against real stores and engines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import pytest

from tasks.process import MAX_RETRIES, ArticleTask, TaskContext, process_article, retry_delay
from worker.celery_app import BROKER_TRANSIENT_ERRORS, create_app
from worker.cli.queue_cmds import parse_since, worker_argv
from worker.config import Settings
from worker.runtime import build_engines
from worker.store import TRANSIENT_DB_ERRORS, Store


def bind_task(tmp_path: Path, database_url: str, migrate: bool = True, **context_options: Any) -> tuple[Store, Any]:
    """The task bound to a real store and engines over an empty model store (unbind with
    `ArticleTask.bind_context(None)`)."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    settings = Settings(database_url=database_url, models_dir=models, targets=("de",))
    app = create_app(settings)
    store = Store(database_url)
    if migrate:
        store.migrate()
    context = TaskContext(store=store, engines=build_engines(settings), limits=settings.limits,
                          transient_errors=BROKER_TRANSIENT_ERRORS + TRANSIENT_DB_ERRORS, retry_max_delay_s=1,
                          **context_options)
    ArticleTask.bind_context(lambda: context)
    return store, app.tasks[process_article.name]


@pytest.fixture
def bound(tmp_path: Path, database_url: str) -> Iterator[tuple[Store, object]]:
    store, task = bind_task(tmp_path, database_url)
    yield store, task
    ArticleTask.bind_context(None)
    store.close()


def test_a_valid_article_is_processed_once_even_if_delivered_twice(bound) -> None:
    store, task = bound
    article = {"id": "e1", "title": "Council approves budget", "text": "The council approved the budget. It passed late."}
    first = task.apply(kwargs={"article": article}, task_id="m-1")
    assert first.state == "SUCCESS"
    # the outcome carries what the worker's metrics and logs need (no second validation, no read-back)
    assert {k: first.result[k] for k in ("job_id", "status", "models")} == {
        "job_id": "m-1", "status": "partial", "models": {"summary": "extractive"}}
    assert first.result["article_id"] == store.job("m-1").article_key
    assert {"clean", "detect", "summarize"} <= set(first.result["timings_ms"])
    again = task.apply(kwargs={"article": article}, task_id="m-1")
    assert again.result["skipped"] == "already partial"
    job = store.job("m-1")
    assert job is not None and job.attempts == 1
    result = store.result("m-1")
    assert result is not None and set(result.summary) == {"en"} and "de" in result.errors


def test_a_task_killed_at_the_hard_time_limit_fails_its_job_not_a_finished_one(bound) -> None:
    from celery.exceptions import TimeLimitExceeded

    store, task = bound
    article = {"text": "The council approved the budget. It passed late."}
    task.apply(kwargs={"article": article}, task_id="m-done")
    from pipeline.article import validate_article

    running = validate_article({"text": "A storm reached the coast. Roads were closed."}, Settings(targets=("de",)).limits)
    store.start_job(running, "m-killed", "bulk", max_attempts=5)
    # what Celery's main process calls after killing the pool process at the hard limit
    task.on_failure(TimeLimitExceeded(30), "m-killed", (), {"article": {}}, None)
    task.on_failure(TimeLimitExceeded(30), "m-done", (), {"article": article}, None)
    killed = store.result("m-killed")
    assert killed is not None and killed.status == "failed" and "hard time limit" in killed.errors["job"]
    done = store.result("m-done")
    assert done is not None and done.status == "partial"


def test_bad_input_fails_fast_and_is_never_retried(bound, caplog: pytest.LogCaptureFixture) -> None:
    store, task = bound
    with caplog.at_level(logging.WARNING, logger="tasks.process"):
        res = task.apply(kwargs={"article": {"id": "bad", "text": "x", "targets": ["zz"]}}, task_id="m-bad")
    assert res.state == "SUCCESS" and res.result["status"] == "failed"
    assert not any("transient" in r.getMessage() for r in caplog.records)
    stored = store.result("m-bad")
    assert stored is not None and stored.status == "failed" and stored.external_id == "bad"
    assert stored.errors["article"] == "targets: unknown language code 'zz' (use ISO 639-1, e.g. 'de')"


def test_a_message_without_an_article_is_dropped_without_a_row(bound) -> None:
    store, task = bound
    res = task.apply(kwargs={}, task_id="m-none")
    assert res.state == "SUCCESS" and res.result["status"] == "dropped"
    assert store.row_counts()["jobs"] == 0


def test_transient_store_faults_are_retried_with_backoff_then_give_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a PostgreSQL that is not there: every store call raises OperationalError
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    store, task = bind_task(tmp_path, url, migrate=False)
    try:
        with caplog.at_level(logging.WARNING, logger="tasks.process"):
            # eager mode runs each retry at once (no countdown): the count is what is checked
            res = task.apply(kwargs={"article": {"text": "Hello there."}}, task_id="m-t")
    finally:
        ArticleTask.bind_context(None)
        store.close()
    assert res.state == "FAILURE"
    retries = [r for r in caplog.records if "transient fault" in r.getMessage()]
    assert len(retries) == MAX_RETRIES
    assert any(f"giving up after {MAX_RETRIES} retries" in r.getMessage() for r in caplog.records)


def test_a_task_waits_in_place_for_a_database_that_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store refuses connections for a few seconds: the task holds its message and waits
    (no broker retry, so its worker takes no other message meanwhile), then claims and
    finishes its job once."""
    import threading

    import psycopg

    from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database

    url = create_pg_database("bw_wait")
    name = url.rsplit("/", 1)[1]
    store, task = bind_task(tmp_path, url, store_wait_s=30)
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        store.engine.dispose()
        reopen = threading.Timer(2.5, lambda: admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        reopen.start()
        with caplog.at_level(logging.WARNING, logger="tasks.process"):
            res = task.apply(kwargs={"article": {"text": "The council approved the budget. It passed late."}},
                             task_id="m-wait")
        reopen.join()
    finally:
        ArticleTask.bind_context(None)
        store.close()
        admin.close()
    try:
        assert res.state == "SUCCESS" and (res.result["job_id"], res.result["status"]) == ("m-wait", "partial")
        waits = [r.getMessage() for r in caplog.records if "store unreachable" in r.getMessage()]
        assert len(waits) >= 2 and waits[0].startswith("message m-wait: store unreachable")
        assert not any("transient fault" in r.getMessage() for r in caplog.records)  # no broker retry
        reader = Store(url)
        try:
            job = reader.job("m-wait")
            assert job is not None and job.attempts == 1 and job.status == "partial"
        finally:
            reader.close()
    finally:
        drop_pg_database(url)


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    for retries in range(10):
        step = min(60, 2 * 2**retries)
        delays = [retry_delay(retries, 60) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert max(retry_delay(20, 60) for _ in range(50)) <= 60


def test_settings_that_break_the_delivery_guarantees_are_refused() -> None:
    with pytest.raises(ValueError, match="LEASE_RENEW_S"):
        Settings(broker_visibility_timeout=60, broker_lease_renew_s=30)
    with pytest.raises(ValueError, match="SOFT_TIME_LIMIT"):
        Settings(task_soft_time_limit=60, task_time_limit=60)
    default = Settings()
    # leases: the visibility timeout is short and does not depend on the task's time limit
    assert default.broker_visibility_timeout == 60 and default.lease_renew_interval * 3 <= 60
    assert Settings(task_soft_time_limit=3000, task_time_limit=3600).broker_visibility_timeout == 60


def test_app_accepts_json_only_and_acks_late() -> None:
    app = create_app(Settings())
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["queue_order_strategy"] == "priority"
    assert [q.name for q in conf.task_queues] == ["live", "bulk"] and conf.task_default_queue == "live"


def test_worker_defaults_come_first_and_extra_arguments_win() -> None:
    argv = worker_argv(Settings(worker_pool="prefork", worker_concurrency=3), ["-Q", "live", "-c", "1"])
    assert argv[:3] == ["worker", "--queues", "live,bulk"]
    assert argv[-4:] == ["-Q", "live", "-c", "1"]  # Click keeps the last value of an option
    assert "--concurrency" in argv and argv[argv.index("--concurrency") + 1] == "3"
    solo = worker_argv(Settings(worker_pool="solo"), [])
    assert "--concurrency" not in solo and solo[solo.index("--pool") + 1] == "solo"


def test_since_takes_iso_dates_and_ages() -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T12:00:00+02:00", now) == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)


def test_the_main_process_loads_the_detector_for_its_pool_processes_to_share() -> None:
    import gc

    import pipeline.detect as detect
    from worker.celery_app import _share_with_pool_processes

    detect._identifier = None
    try:
        _share_with_pool_processes()
        assert detect._identifier is not None  # loaded before the fork: pool processes inherit it
        assert gc.get_freeze_count() > 0  # out of the collector's way, so its pages stay shared
        assert detect.detect_language("The council approved the budget on Tuesday evening.").lang == "en"
    finally:
        gc.unfreeze()


def test_a_broker_too_old_for_the_idle_wait_is_named_with_the_version_needed() -> None:
    from worker.broker.server import check_broker_version, redis_version_problem

    problem = redis_version_problem("6.0.16")
    assert problem is not None and "6.0.16" in problem and ">= 6.2" in problem
    assert redis_version_problem("6.2.0") is None and redis_version_problem("7.0.15") is None
    assert redis_version_problem("unknown") is None  # a Redis-compatible server: let it try
    assert check_broker_version("redis://127.0.0.1:6379/0") is None  # the machine's Redis 7
    assert check_broker_version("redis://127.0.0.1:1/0") is None  # unreachable: the worker retries
