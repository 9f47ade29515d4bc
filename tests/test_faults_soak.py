"""Soak: 2,000 articles through one worker (prefork, two pool processes, the toy models),
with the resident memory of the worker and its pool sampled all along.

After a warm-up (models loaded, caches and allocator pools filled) memory must stay flat: the
growth from the warm-up figure to the highest later sample is printed (`RESULT soak_...`)
and must stay under a generous bound. A leak of even a few kB per article shows: 2,000
articles × 32 kB is 64 MB.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import all_jobs, toy_articles, tree_rss, wait_for, write_jsonl
from worker.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(420)]

N_ARTICLES = 2_000
WARM_UP_ARTICLES = 400
MAX_GROWTH_MB = 64
MB = 1024 * 1024


def test_two_thousand_articles_through_one_worker_memory_stays_flat(
    tmp_path: Path, redis_url: str, workers: WorkerFactory, toy_models_dir: Path, cli: Any
) -> None:
    database = f"sqlite:///{tmp_path / 'soak.db'}"
    env = {**make_service_env(tmp_path, database, redis_url), "BABELWIRE_MODELS_DIR": str(toy_models_dir)}
    path = write_jsonl(tmp_path / "soak.jsonl", toy_articles(N_ARTICLES, seed=101, sentences=3))
    run = cli(["enqueue", str(path), "--to", "qaa,qab", "--queue", "bulk", "--json"], env, timeout=300)
    assert run.returncode == 0, run.stderr
    store = Store(database)
    worker = workers.start(env, "--pool", "prefork", "--concurrency", "2")
    samples: list[tuple[float, int, int]] = []  # (seconds, articles finished, RSS bytes)
    stop = threading.Event()

    def finished() -> int:
        return store.counts()["done"]

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - started, finished(), tree_rss(worker.proc.pid)))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wait_for(lambda: finished() == N_ARTICLES, 360, f"{N_ARTICLES} articles",
                 interval=1, context=lambda: worker.log[-4000:])
    finally:
        stop.set()
        sampler.join(timeout=10)
    try:
        assert worker.alive()
        assert store.row_counts() == {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * 6}
        assert {j.status for j in all_jobs(store)} == {"done"}
    finally:
        store.close()

    warm = [rss for _, n, rss in samples if n >= WARM_UP_ARTICLES and rss]
    assert len(warm) >= 10, f"too few samples after the warm-up: {samples}"
    baseline, peak, last = warm[0], max(warm), warm[-1]
    elapsed = samples[-1][0]
    growth_mb = (peak - baseline) / MB
    print(f"\nRESULT soak_articles {N_ARTICLES} in {elapsed:.0f} s ({N_ARTICLES / elapsed:.1f} articles/s)")
    print(f"RESULT soak_rss_after_warm_up {baseline / MB:.1f} MB (worker + 2 pool processes)")
    print(f"RESULT soak_rss_growth {growth_mb:+.1f} MB peak, {(last - baseline) / MB:+.1f} MB at the end, "
          f"over {N_ARTICLES - WARM_UP_ARTICLES} articles after the warm-up")
    assert growth_mb <= MAX_GROWTH_MB, [(round(t), n, round(r / MB, 1)) for t, n, r in samples]
