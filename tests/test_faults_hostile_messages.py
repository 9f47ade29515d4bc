"""Hostile messages straight onto the queue (LPUSH of hand-made kombu envelopes), past every
edge check: wrong body shapes, wrong types, huge lists, positional arguments, unknown task
names, bad headers, and a pickle whose payload would create a file if it were ever unpickled.

The worker (prefork, as deployed) must stay up and process a good article afterwards; every
bad message that carries an id ends as a stored failed job, or is rejected with a log line
naming it; the pickle payload never runs.

What tests/test_worker_e2e.py already covers and is not repeated here: messages sent with
`send_task` (a string article, a wrong kwarg, pickle via Celery's serializer) and list items
that are not kombu envelopes at all (dropped by the guarded transport).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import WorkerFactory, create_pg_database, drop_pg_database, make_service_env
from tests.faults_support import TASK, all_jobs, envelope, task_body, toy_articles, wait_for
from worker.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]


class _CreateFileWhenUnpickled:
    """Unpickling this calls open(path, "w"): a file appears if anything ever unpickles it."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (self.path, "w")


# Refused by Celery itself with a warning that does not name the message: the text it logs.
CELERY_LOGS = {"h-kwargs-not-an-object": "Task keyword arguments is not a mapping"}


def hostile_messages(marker: Path) -> dict[str, tuple[bytes, str]]:
    """id → (envelope, what must become of it): "failed" (a stored failed job), "logged"
    (rejected, no job, a WARNING or ERROR line names the id), "celery" (the same, but Celery's
    own warning does not name the id: CELERY_LOGS) or "processed" (a good article after all)."""
    good, callback_article = toy_articles(2, seed=61)
    count = iter(range(1000))

    def article() -> dict[str, Any]:
        # a different article each time: equal invalid articles share one failed job
        return {"id": "hostile", "text": f"A perfectly fine sentence number {next(count)}."}

    pickled = pickle.dumps(((), {"article": _CreateFileWhenUnpickled(marker)}, {}), protocol=2)
    m: dict[str, tuple[bytes, str]] = {}

    def add(name: str, outcome: str, body: bytes, **options: Any) -> None:
        task_id = f"h-{name}"
        m[task_id] = (envelope(body, task_id=task_id, **options), outcome)

    # the body: not [args, kwargs, embed]
    add("body-null", "logged", b"null")
    add("body-string", "logged", b'"hello"')
    add("body-number", "logged", b"5")
    add("body-object", "logged", b'{"article": {"text": "x"}}')
    add("body-short-list", "logged", b"[[]]")
    add("args-not-a-list", "logged", task_body(args="abc"))
    add("kwargs-not-an-object", "celery", task_body(kwargs=["article"]))  # see CELERY_LOGS
    add("body-not-json", "logged", b"{not json")
    # the article: wrong types
    add("article-null", "logged", task_body(kwargs={"article": None}))
    add("article-string", "logged", task_body(kwargs={"article": "just a string"}))
    add("article-number", "logged", task_body(kwargs={"article": 42}))
    add("article-list", "logged", task_body(kwargs={"article": [1, 2, 3]}))
    add("text-number", "failed", task_body(kwargs={"article": {"id": "x", "text": 5}}))
    add("targets-object", "failed", task_body(kwargs={"article": {**article(), "targets": {"de": 1}}}))
    add("summary-string", "failed", task_body(kwargs={"article": {**article(), "summary": "long"}}))
    # huge lists
    add("huge-targets", "failed", task_body(kwargs={"article": {**article(), "targets": ["de"] * 200_000}}))
    add("huge-args", "logged", task_body(args=list(range(200_000))))
    add("huge-text", "failed", task_body(kwargs={"article": {**article(), "text": "word " * 400_000}}))
    # positional and unexpected arguments (an article among them still names its job)
    add("positional", "failed", task_body(args=[good]))
    add("positional-and-kwargs", "failed", task_body(args=[1, 2], kwargs={"article": article()}))
    add("extra-kwarg", "failed", task_body(kwargs={"article": article(), "models_dir": "/etc"}))
    # Celery's own call wrapper in the worker takes `self`: refused there, logged with the id
    add("kwarg-named-self", "logged", task_body(kwargs={"article": article(), "self": None}))
    add("model-path", "failed", task_body(kwargs={"article": {**article(), "model": "../../etc/passwd"}}))
    # unknown or malformed task names
    add("unknown-task", "logged", task_body(args=["touch /tmp/x"]), task="os.system")
    add("task-number", "logged", task_body(kwargs={"article": article()}), task=12)
    add("task-null", "logged", task_body(kwargs={"article": article()}), task=None)
    # headers of the wrong type
    add("eta-garbage", "logged", task_body(kwargs={"article": article()}), headers={"eta": "not a date"})
    add("expires-garbage", "logged", task_body(kwargs={"article": article()}), headers={"expires": [1]})
    add("timelimit-garbage", "logged", task_body(kwargs={"article": article()}), headers={"timelimit": "x"})
    add("timelimit-strings", "logged", task_body(kwargs={"article": article()}), headers={"timelimit": ["a", "b"]})
    add("retries-garbage", "logged", task_body(kwargs={"article": article()}), headers={"retries": "many"})
    add("id-too-long-" + "x" * 60, "logged", task_body(kwargs={"article": article()}))
    add("protocol-1", "logged", json.dumps({"task": TASK, "id": "h-protocol-1", "args": [],
                                              "kwargs": {"article": article()}, "timelimit": "x"}).encode(),
        without=("task",))
    # a good article with a routing key that is not a queue name: processed, on the queue it came from
    add("routing-key-object", "processed", task_body(kwargs={"article": {**article(), "text": "Routed oddly."}}),
        routing_key={"queue": "live"})
    add("routing-key-long", "processed", task_body(kwargs={"article": {**article(), "text": "Routed long."}}),
        routing_key="r" * 500)
    # workflows: a message must not make the worker publish others (h-callback-target never runs)
    add("callback-unknown-task", "logged",
        task_body(kwargs={"article": None}, embed={"callbacks": [{"task": "os.system", "args": ["true"]}],
                                                   "errbacks": None, "chain": None, "chord": None}))
    callback = {"task": TASK, "args": [], "kwargs": {"article": callback_article}, "subtask_type": None,
                "immutable": True, "options": {"task_id": "h-callback-target", "queue": "live"}}
    add("callback-registered-task", "failed",
        task_body(kwargs={"article": article()}, embed={"callbacks": [callback], "errbacks": [callback],
                                                      "chain": [callback], "chord": None}))
    # serializers other than JSON: refused before anything is decoded
    add("pickle", "logged", pickled, content_type="application/x-python-serialize")
    add("yaml", "logged", b"!!python/object/apply:os.system ['touch /tmp/x']", content_type="application/x-yaml")
    add("compressed-garbage", "logged", b"not gzip", headers={"compression": "application/x-gzip"})
    return m


def test_hostile_messages_never_kill_the_worker_nor_run_code(tmp_path: Path, redis_url: str,
                                                            workers: WorkerFactory) -> None:
    marker = tmp_path / "UNPICKLED-MARKER"
    url = create_pg_database("bw_faults_hostile")
    store = Store(url)
    try:
        store.migrate()
        env = make_service_env(tmp_path, url, redis_url)
        worker = workers.start(env, "--pool", "prefork", "--concurrency", "1")
        main_pid = worker.proc.pid
        messages = hostile_messages(marker)
        raw = redis.Redis.from_url(redis_url)
        for message, _ in messages.values():
            raw.lpush("live", message)  # as kombu publishes: LPUSH, consumed by BRPOP in order
        raw.close()

        from celery import Celery

        site = Celery(broker=redis_url)
        good = toy_articles(1, seed=62)[0]
        site.send_task(TASK, kwargs={"article": good}, queue="live", task_id="h-good-after")
        site.close()
        wait_for(lambda: (j := store.job("h-good-after")) is not None and j.status == "partial", 120,
                 "a good article after the hostile ones", context=lambda: worker.log[-8000:])
        assert worker.alive() and worker.proc.pid == main_pid
        assert not marker.exists(), "a pickle payload was unpickled in the worker"

        jobs = {j.id: j for j in all_jobs(store)}
        assert "h-callback-target" not in jobs
        warnings = [line for line in worker.log.splitlines() if '"level": "WARNING"' in line
                    or '"level": "ERROR"' in line or '"level": "CRITICAL"' in line]
        problems = []
        for task_id, (_, outcome) in messages.items():
            job = jobs.get(task_id)
            if outcome == "failed":
                if job is None or job.status != "failed" or not job.error:
                    problems.append(f"{task_id}: expected a stored failed job, got {job and (job.status, job.error)}")
            elif outcome == "processed":
                if job is None or (job.status, job.queue) != ("partial", "live"):
                    problems.append(f"{task_id}: expected processed on live, got {job and (job.status, job.queue)}")
            else:
                if job is not None:
                    problems.append(f"{task_id}: has a job ({job.status})")
                # a task id longer than a job id is shown cut
                expected = CELERY_LOGS[task_id] if outcome == "celery" else task_id[:64]
                if not any(expected in line for line in warnings):
                    problems.append(f"{task_id}: no warning or error names it")
        assert not problems, "\n".join(problems) + "\n" + worker.log[-6000:]
        assert redis.Redis.from_url(redis_url).llen("live") == 0
    finally:
        store.close()
        workers.stop_all()
        drop_pg_database(url)


def builtin_task_messages() -> dict[str, bytes]:
    """Celery's own tasks, registered in every worker: whatever a message names, a babelwire
    worker runs `babelwire.process_article` and nothing else."""
    article = toy_articles(1, seed=63)[0]
    callback = {"task": TASK, "args": [], "kwargs": {"article": article}, "subtask_type": None,
                "immutable": True, "options": {"task_id": "h-chord-callback-target", "queue": "live"}}
    return {
        # with an empty result set the chord is "ready" and the callback is published at once
        "h-chord-unlock": envelope(task_body(args=["some-group", callback], kwargs={"result": []}),
                                   task_id="h-chord-unlock", task="celery.chord_unlock"),
        "h-backend-cleanup": envelope(task_body(), task_id="h-backend-cleanup", task="celery.backend_cleanup"),
        # shown under our name, run as another: the shadow header changes nothing
        "h-shadowed-builtin": envelope(task_body(args=["g", callback], kwargs={"result": []}),
                                       task_id="h-shadowed-builtin", task="celery.chord_unlock",
                                       headers={"shadow": TASK}),
    }


def test_only_process_article_runs_and_far_future_etas_are_refused(tmp_path: Path, redis_url: str,
                                                                    workers: WorkerFactory) -> None:
    """Issue 10 items 4 and 5. Refused messages are logged by id and kept in the dead-letter
    list; a far-future ETA is not held (it used to be kept, and handed out again at every
    visibility timeout, until its time came). A short countdown, as our own retries use,
    still runs (BABELWIRE_BROKER_MAX_ETA_S=0: nothing beyond our own retries' countdowns)."""
    from datetime import datetime, timedelta, timezone

    from celery import Celery

    from worker.broker.dead_letter import DEAD_LETTER_KEY, parse_entry

    url = f"sqlite:///{tmp_path / 'babelwire.db'}"
    store = Store(url)
    store.migrate()
    raw = redis.Redis.from_url(redis_url)
    try:
        worker = workers.start(make_service_env(tmp_path, url, redis_url), "--pool", "prefork", "--concurrency", "1")
        builtins = builtin_task_messages()
        for message in builtins.values():
            raw.lpush("live", message)
        site = Celery(broker=redis_url)
        far, soon = toy_articles(2, seed=64)
        site.send_task(TASK, kwargs={"article": far}, queue="live", task_id="h-eta-tomorrow",
                       eta=datetime.now(timezone.utc) + timedelta(days=1))
        site.send_task(TASK, kwargs={"article": soon}, queue="live", task_id="h-countdown-short", countdown=3)
        site.close()
        wait_for(lambda: (j := store.job("h-countdown-short")) is not None and j.status in ("partial", "failed"),
                 60, "the short countdown to run", context=lambda: worker.log[-6000:])
        assert worker.alive()

        refused = {"h-eta-tomorrow", *builtins}
        jobs = {j.id for j in all_jobs(store)}
        assert not refused & jobs and "h-chord-callback-target" not in jobs, jobs
        letters = [parse_entry(item) for item in raw.lrange(DEAD_LETTER_KEY, 0, -1)]
        reasons = {json.loads(item)["headers"]["id"]: letter.reason for letter, item in letters}
        assert set(reasons) == refused, reasons
        assert "celery.chord_unlock" in reasons["h-chord-unlock"] and "not run" in reasons["h-chord-unlock"]
        assert "celery.backend_cleanup" in reasons["h-backend-cleanup"]
        assert "eta" in reasons["h-eta-tomorrow"]
        errors = [line for line in worker.log.splitlines() if '"level": "ERROR"' in line]
        assert all(any(task_id in line for line in errors) for task_id in refused)
        assert raw.llen("live") == 0 and raw.hlen("unacked") == 0  # nothing held for tomorrow
    finally:
        raw.close()
        store.close()
        workers.stop_all()
