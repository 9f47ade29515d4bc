"""The SQL store against real SQLite and PostgreSQL: migrations, idempotency keys, upserts."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from pipeline.article import validate_article
from pipeline.result import Result
from worker.migrations import current_revision, head_revision
from worker.store import Base, Store


def article(n: int, **extra):
    return validate_article({"id": f"ext-{n}", "title": f"Title {n}", "text": f"Body number {n}. It is news.",
                             "targets": ["de", "fr"], **extra})


def result_for(a, status="done", **extra) -> Result:
    return Result(article_id=a.key, external_id=a.id, status=status, source_lang="en", source_lang_confidence=0.9,
                  title={"en": a.title, "de": "Titel", "fr": "Titre"},
                  summary={"en": "Summary.", "de": "Zusammenfassung.", "fr": "Résumé."},
                  models={"summary": "extractive", "de": "toy-en-de", "fr": "toy-en-fr"},
                  timings_ms={"clean": 1}, **extra)


def test_migrations_are_idempotent_and_match_the_models(store: Store) -> None:
    store.migrate()  # second run: nothing to do
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def _migrate(url: str) -> str:
    s = Store(url)
    try:
        s.migrate()
        return current_revision(s.engine) or ""
    finally:
        s.close()


def test_concurrent_starters_migrate_once(database_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        revisions = pool.map(_migrate, [database_url] * 4)
    assert revisions == [head_revision()] * 4
    s = Store(database_url)
    with s.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    s.close()


def test_submit_makes_one_job_per_article_and_reports_duplicates(store: Store) -> None:
    a, b = article(1), article(2)
    first = store.submit([a, b, a], "bulk")
    assert [s.duplicate for s in first] == [False, False, True]
    assert first[2].job_id == first[0].job_id
    assert [s.send for s in first] == [True, True, False]
    # the first submission claimed the publish: a resubmission is a duplicate with nothing to send
    again = store.submit([a, b], "live")
    assert all(s.duplicate and not s.send for s in again)
    assert store.row_counts() == {"articles": 2, "jobs": 2, "texts": 0}
    assert store.counts()["queued"] == 2


def test_a_failed_publish_leaves_nothing_and_the_next_submission_sends(store: Store) -> None:
    a, b = article(1), article(2)

    def broker_down(_: object) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        store.submit([a, b], "bulk", publish=broker_down)
    assert store.row_counts()["jobs"] == 0  # rolled back with the publish: no orphan rows
    published: list[tuple[object, object]] = []
    subs = store.submit([a, b], "bulk", publish=published.extend)
    assert [s.send for s in subs] == [True, True] and [p[1] for p in published] == subs
    job = store.job(subs[0].job_id)
    assert job is not None and job.sent_at is not None


def test_different_options_are_different_jobs(store: Store) -> None:
    a = article(1)
    b = article(1, targets=["es"])
    subs = store.submit([a, b], "bulk")
    assert not subs[1].duplicate and subs[0].job_id != subs[1].job_id


def test_redelivered_message_rewrites_the_same_rows(store: Store) -> None:
    a = article(1)
    (sub,) = store.submit([a], "bulk")
    store.mark_sent([sub.job_id])
    claim = store.start_job(a, sub.job_id, "bulk", max_attempts=5)
    assert claim.proceed and claim.attempts == 1
    # the worker dies after writing, before acking: the message comes again
    store.finish_job(sub.job_id, result_for(a))
    store.finish_job(sub.job_id, result_for(a))
    assert store.row_counts() == {"articles": 1, "jobs": 1, "texts": 6}
    again = store.start_job(a, sub.job_id, "bulk", max_attempts=5)
    assert not again.proceed and again.reason == "already done"
    res = store.result(sub.job_id)
    assert res is not None and res.status == "done"
    assert res.summary == {"en": "Summary.", "de": "Zusammenfassung.", "fr": "Résumé."}
    assert res.title["de"] == "Titel" and res.external_id == "ext-1" and res.source_lang == "en"


def test_a_second_message_for_a_queued_job_is_a_duplicate(store: Store) -> None:
    a = article(1)
    (sub,) = store.submit([a], "bulk")
    store.mark_sent([sub.job_id])
    other = store.start_job(a, "some-other-message", "live", max_attempts=5)
    assert not other.proceed and other.job_id == sub.job_id and "duplicate" in other.reason


def test_a_job_whose_message_never_went_out_is_claimed_by_any_message(store: Store) -> None:
    a = article(1)
    (sub,) = store.submit([a], "bulk")
    with store.engine.begin() as conn:  # a row of an older version, written before its message went out
        conn.execute(text("UPDATE jobs SET sent_at = NULL"))
    claim = store.start_job(a, "news-site-message", "live", max_attempts=5)
    assert claim.proceed and claim.job_id == sub.job_id


def test_a_message_from_outside_creates_its_job(store: Store) -> None:
    a = article(7)
    claim = store.start_job(a, "task-id-from-news-site", "live", max_attempts=5)
    assert claim.proceed and claim.job_id == "task-id-from-news-site"
    job = store.job("task-id-from-news-site")
    assert job is not None and job.status == "running" and job.queue == "live" and job.attempts == 1
    # the same article submitted later through enqueue is that job
    assert store.submit([a], "bulk")[0].job_id == "task-id-from-news-site"


def _lease_runs_out(store: Store) -> None:
    """The worker that ran the job died: its lease (the hard time limit) has run out."""
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET updated_at = :t"), {"t": datetime.now(timezone.utc) - timedelta(hours=1)})


def test_a_job_that_keeps_killing_workers_fails_for_good(store: Store) -> None:
    a = article(1)
    for attempt in range(1, 4):
        claim = store.start_job(a, "m1", "bulk", max_attempts=3)
        assert claim.proceed and claim.attempts == attempt
        _lease_runs_out(store)
    last = store.start_job(a, "m1", "bulk", max_attempts=3)
    assert not last.proceed and last.status == "failed"
    res = store.result("m1")
    assert res is not None and res.status == "failed" and "gave up after 3 attempts" in res.errors["job"]


def test_malformed_message_is_a_stored_failure_once(store: Store) -> None:
    raw = {"id": "bad-1", "text": 42}
    job_id = store.record_malformed("m-bad", raw, "live", "text: Input should be a valid string (got 42)")
    assert store.record_malformed("m-bad", raw, "live", "text: ...") == job_id
    res = store.result(job_id)
    assert res is not None and res.status == "failed" and res.external_id == "bad-1"
    assert "valid string" in res.errors["article"]
    assert store.row_counts()["jobs"] == 1


def test_export_streams_pages_in_order_and_filters(store: Store) -> None:
    arts = [article(i) for i in range(5)]
    subs = store.submit(arts, "bulk")
    for a, s in zip(arts, subs):
        store.start_job(a, s.job_id, "bulk", max_attempts=5)
        store.finish_job(s.job_id, result_for(a))
    results = list(store.iter_results(page=2))
    assert [r.job_id for r in results] == [s.job_id for s in subs]
    only_de = list(store.iter_results(langs=["de"], page=3))
    assert all(set(r.summary) == {"de"} and set(r.title) == {"de"} for r in only_de) and len(only_de) == 5
    future = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert list(store.iter_results(since=future)) == []
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    assert len(list(store.iter_results(since=past))) == 5


def test_unfinished_jobs_are_not_exported(store: Store) -> None:
    store.submit([article(1)], "bulk")
    assert list(store.iter_results()) == []
    assert store.counts() == {"queued": 1, "running": 0, "done": 0, "partial": 0, "failed": 0}


def test_timestamps_are_utc_aware(store: Store) -> None:
    (sub,) = store.submit([article(1)], "bulk")
    job = store.job(sub.job_id)
    assert job is not None and job.created_at.tzinfo is not None
    assert abs(job.created_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_concurrent_submitters_publish_each_job_once(database_url: str) -> None:
    """Issue 10 item 3: the decision to publish is taken once per job, whatever the races."""
    setup = Store(database_url)
    setup.migrate()
    setup.close()
    a, b = article(1), article(2)
    published: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def publish(pairs: list[tuple[object, object]]) -> None:
        with lock:
            published.extend(s.job_id for _, s in pairs)  # type: ignore[attr-defined]

    def submitter() -> None:
        store = Store(database_url)
        try:
            barrier.wait()
            for _ in range(5):
                store.submit([a, b], "live", publish=publish)
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=submitter) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(published) == 2 and len(set(published)) == 2


def test_a_second_delivery_of_a_running_job_does_not_run_in_parallel(store: Store) -> None:
    """Issue 10 item 3: while the job runs under its lease, a second delivery of the same
    message is dropped; once the lease has run out (the worker died) it takes the job over."""
    a = article(1)
    (sub,) = store.submit([a], "live")
    first = store.start_job(a, sub.job_id, "live", max_attempts=5)
    assert first.proceed and first.attempts == 1
    second = store.start_job(a, sub.job_id, "live", max_attempts=5)
    assert not second.proceed and second.status == "running" and "another delivery" in second.reason
    job = store.job(sub.job_id)
    assert job is not None and job.attempts == 1
    store.renew_running([sub.job_id])  # the first delivery's worker is alive: still not
    assert not store.start_job(a, sub.job_id, "live", max_attempts=5).proceed
    _lease_runs_out(store)
    takeover = store.start_job(a, sub.job_id, "live", max_attempts=5)
    assert takeover.proceed and takeover.attempts == 2


def test_a_retry_of_a_running_job_takes_it_over_and_a_copy_does_not(store: Store) -> None:
    """A delivery that hit a transient fault left the job running and sent a retry (Celery
    retries + 1): the retry runs; another copy of the first delivery still does not."""
    a = article(1)
    (sub,) = store.submit([a], "live")
    assert store.start_job(a, sub.job_id, "live", max_attempts=5, retries=0).proceed
    copy = store.start_job(a, sub.job_id, "live", max_attempts=5, retries=0)
    assert not copy.proceed and "another delivery" in copy.reason
    retry = store.start_job(a, sub.job_id, "live", max_attempts=5, retries=1)
    assert retry.proceed and retry.attempts == 2
    assert not store.start_job(a, sub.job_id, "live", max_attempts=5, retries=1).proceed
    # the broker gave the message back (its pool process was killed): it takes the job over
    restored = store.start_job(a, sub.job_id, "live", max_attempts=5, retries=1, redelivered=True)
    assert restored.proceed and restored.attempts == 3


def test_a_lookup_by_an_id_postgresql_cannot_store_finds_nothing(store: Store) -> None:
    """Issue 10 item 9: a NUL or an over-long id is no row, not a database error."""
    assert store.job("a\0b") is None and store.result("a\0b") is None
    assert store.find_articles("a\0b") == [] and store.find_articles("x" * 5000) == []
