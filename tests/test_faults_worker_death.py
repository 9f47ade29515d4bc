"""Worker death: SIGKILL mid-article, again and again, across a batch of 100 articles.

Two ways to die, alternated: the pool process running the article is killed (Celery's main
process sees the loss and, with `task_reject_on_worker_lost`, puts the message back at
once), and the whole worker — main process and pool — is killed at once (nobody is left to
put anything back, nor to renew the message's lease: it is handed out again when the lease
lapses, one visibility timeout after the kill). Default broker settings throughout. Every article must end done, with exactly one row per article, per job and per
(article, kind, language) text, and every job that was cut short must show one more attempt.

tests/test_worker_e2e.py kills one solo worker once across 60 articles (without models);
this is the repeated version, with the toy models and the production pool and database.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import WorkerFactory, WorkerProcess, create_pg_database, drop_pg_database, make_service_env
from tests.faults_support import all_jobs, distinct_counts, toy_articles, wait_for, write_jsonl
from worker.store import RUNNING, Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(480)]

N_ARTICLES = 100
TARGETS = ("qaa", "qab")
# (articles done before the kill, what is killed); a pool-process kill costs nothing, a whole
# worker kill costs one lease (the default visibility timeout, 60 s: every test here runs at
# the default broker settings)
KILLS = [(8, "pool"), (20, "worker"), (35, "pool"), (50, "pool"), (65, "worker"), (80, "pool")]


def running_jobs(store: Store, stale: dict[str, int]) -> dict[str, int]:
    """id → attempts of the jobs marked running, except those of a killed worker that nobody
    has taken up again yet (`stale`: id → attempts when cut short)."""
    return {j.id: j.attempts for j in all_jobs(store) if j.status == RUNNING and stale.get(j.id) != j.attempts}


def done_count(store: Store) -> int:
    return sum(j.status == "done" for j in all_jobs(store))


def pool_processes(worker: WorkerProcess) -> list[psutil.Process]:
    return psutil.Process(worker.proc.pid).children()


def kill_mid_article(store: Store, worker: WorkerProcess, what: str, stale: dict[str, int],
                     tries: int = 20) -> dict[str, int]:
    """SIGKILL the pool process (or the whole worker) while an article is running; returns the
    jobs it cut short (id → attempts then). A kill that lands between two articles cuts nothing
    short: it is tried again (pool kills only; a whole-worker kill is one try)."""
    for _ in range(tries):
        wait_for(lambda: bool(running_jobs(store, stale)), 60, "an article to be running",
                 interval=0.005, context=lambda: worker.log[-4000:])
        if what == "pool":
            for process in pool_processes(worker):
                os.kill(process.pid, signal.SIGKILL)
        else:
            worker.kill()
        # only the dead could have been writing: what is still running now was cut short
        cut = running_jobs(store, stale)
        if cut or what == "worker":
            return cut
        # wait for the main process to replace its pool process before trying again
        wait_for(lambda: len(pool_processes(worker)) == 1, 30, "a new pool process")
    raise AssertionError(f"{tries} pool kills, none mid-article")


def test_sigkill_mid_article_again_and_again_loses_and_duplicates_nothing(
    tmp_path: Path, redis_url: str, workers: WorkerFactory, toy_models_dir: Path, cli: Any
) -> None:
    url = create_pg_database("bw_faults_kill")
    store = Store(url)
    try:
        env = {**make_service_env(tmp_path, url, redis_url),
               "BABELWIRE_MODELS_DIR": str(toy_models_dir),
               "BABELWIRE_TASK_SOFT_TIME_LIMIT": "10", "BABELWIRE_TASK_TIME_LIMIT": "12"}
        articles = toy_articles(N_ARTICLES, seed=71, sentences=30)  # long enough to be caught running
        path = write_jsonl(tmp_path / "batch.jsonl", articles)
        run = cli(["enqueue", str(path), "--to", ",".join(TARGETS), "--queue", "bulk", "--json"], env)
        assert run.returncode == 0, run.stderr
        worker_args = ("--pool", "prefork", "--concurrency", "1")
        worker = workers.start(env, *worker_args)

        cut_short: dict[str, int] = {}  # job id → times its article was cut short
        landed = {"pool": 0, "worker": 0}
        stale: dict[str, int] = {}  # cut short, not taken up again yet: id → attempts
        for done_before, what in KILLS:
            wait_for(lambda: done_count(store) >= done_before, 120, f"{done_before} articles done",
                     context=lambda: worker.log[-4000:])
            cut = kill_mid_article(store, worker, what, stale)
            landed[what] += bool(cut)
            stale.update(cut)
            for job_id in cut:
                cut_short[job_id] = cut_short.get(job_id, 0) + 1
            if what == "worker":
                worker = workers.start(env, *worker_args)
        assert done_count(store) < N_ARTICLES, "the batch finished before the last kill: it proved nothing"
        # pool kills are retried until one lands mid-article; a whole-worker kill is one try
        assert landed["worker"] >= 1, f"no whole-worker kill landed mid-article: {landed}"

        started = time.monotonic()
        wait_for(lambda: done_count(store) == N_ARTICLES, 180, "every article done after the kills",
                 context=lambda: worker.log[-4000:])
        print(f"\nRESULT worker_death {len(KILLS)} kills, mid-article: {landed}; "
              f"last article done {time.monotonic() - started:.1f} s after the last kill")

        jobs = all_jobs(store)
        assert len(jobs) == N_ARTICLES and {j.status for j in jobs} == {"done"}
        per_article = 2 * (1 + len(TARGETS))  # title and summary in en, qaa, qab
        expected = {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * per_article}
        assert store.row_counts() == expected
        assert distinct_counts(store) == expected  # and every row is a different identity
        # each cut-short article was delivered again once per kill, every other one ran once
        assert {j.id: j.attempts for j in jobs} == {j.id: 1 + cut_short.get(j.id, 0) for j in jobs}
        exported = {r.external_id: r for r in store.iter_results()}
        assert sorted(exported) == sorted(a["id"] for a in articles)
        assert all(set(r.summary) == {"en", *TARGETS} and not r.errors for r in exported.values())
        assert worker.alive()
    finally:
        store.close()
        workers.stop_all()
        drop_pg_database(url)


def completions(logs: list[str]) -> dict[str, int]:
    """job id → deliveries that ran the article to completion (the worker's "article done"
    line; a second delivery of a finished job logs "article duplicate" instead)."""
    counts: dict[str, int] = {}
    for log in logs:
        for line in log.splitlines():
            if '"msg": "article done"' in line:
                job_id = json.loads(line)["job_id"]
                counts[job_id] = counts.get(job_id, 0) + 1
    return counts


def test_default_settings_two_whole_worker_kills_every_article_done_within_two_minutes_of_the_restart(
    tmp_path: Path, redis_url: str, workers: WorkerFactory, toy_models_dir: Path, cli: Any
) -> None:
    """Issue 12's case, at default broker settings (60 s lease): 40 articles, the whole worker
    SIGKILLed twice mid-article and restarted each time. The cut-short articles come back when
    their lease lapses (not after 2 × the hard limit + 60 s, as before leases): every article is
    done within 2 minutes of the last restart, and none ran to completion twice."""
    url = create_pg_database("bw_faults_kill_defaults")
    store = Store(url)
    try:
        env = {**make_service_env(tmp_path, url, redis_url), "BABELWIRE_MODELS_DIR": str(toy_models_dir)}
        for name in ("BABELWIRE_TASK_SOFT_TIME_LIMIT", "BABELWIRE_TASK_TIME_LIMIT"):
            env.pop(name)  # the defaults (300 s / 360 s), which made the old visibility timeout 780 s
        articles = toy_articles(40, seed=72, sentences=30)
        path = write_jsonl(tmp_path / "batch.jsonl", articles)
        run = cli(["enqueue", str(path), "--to", ",".join(TARGETS), "--queue", "bulk", "--json"], env)
        assert run.returncode == 0, run.stderr
        worker_args = ("--pool", "prefork", "--concurrency", "1")
        worker = workers.start(env, *worker_args)
        logs: list[WorkerProcess] = [worker]
        stale: dict[str, int] = {}
        cut_short: dict[str, int] = {}
        killed_at: dict[str, datetime] = {}  # cut-short job → when its worker was killed
        for done_before in (8, 16):
            wait_for(lambda: done_count(store) >= done_before, 180, f"{done_before} articles done",
                     context=lambda: worker.log[-4000:])
            cut = kill_mid_article(store, worker, "worker", stale)
            killed_at.update(dict.fromkeys(cut, datetime.now(timezone.utc)))
            stale.update(cut)
            for job_id in cut:
                cut_short[job_id] = cut_short.get(job_id, 0) + 1
            worker = workers.start(env, *worker_args)
            logs.append(worker)
        restarted = time.monotonic()
        assert cut_short, "neither kill landed mid-article: it proved nothing"
        def unfinished() -> str:
            return "\n".join(f"{j.id} {j.status} attempts={j.attempts} started={j.started_at} updated={j.updated_at}"
                             for j in all_jobs(store) if j.status != "done") + "\n" + worker.log[-3000:]

        wait_for(lambda: done_count(store) == len(articles), 120, "every article done within 2 minutes of the restart",
                 context=unfinished)
        finished = time.monotonic() - restarted
        jobs = all_jobs(store)
        # taken up again: the cut-short job's last start, after the kill of its worker
        redelivered = sorted((j.started_at - killed_at[j.id]).total_seconds() for j in jobs if j.id in killed_at)
        print(f"\nRESULT worker_death_defaults 2 whole-worker kills ({len(cut_short)} cut short): taken up again "
              f"{', '.join(f'{s:.1f}' for s in redelivered)} s after the kill; last article done {finished:.1f} s "
              "after the last restart")
        assert {j.status for j in jobs} == {"done"} and len(jobs) == len(articles)
        assert {j.id: j.attempts for j in jobs} == {j.id: 1 + cut_short.get(j.id, 0) for j in jobs}
        ran = completions([w.log for w in logs])
        assert all(n == 1 for n in ran.values()), {k: n for k, n in ran.items() if n != 1}
        assert worker.alive()
    finally:
        store.close()
        workers.stop_all()
        drop_pg_database(url)
