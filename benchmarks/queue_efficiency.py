"""`queue_efficiency`: articles/s through Redis + a real worker over articles/s in-process.

Same articles (news-like English, 6–10 sentences, distinct), same models (the toy models of
`tests/fixtures/models`), same targets (qaa, qab), translation memory off on both sides (it
has its own figure):

- in-process: `process_batch` over batches of 16 articles, as `babelwire process` runs
  them, on engines built from the same settings as the worker's; results are not stored;
- service: `babelwire enqueue --queue bulk` of the same articles into a warm
  `babelwire worker` (default pool and concurrency), from the first job's creation to the
  last job's finish, as the store records them (storing results included);
- batching service: the same into a bulk worker that batches across articles
  (`-P threads -c 16`, `BABELWIRE_BATCH_ARTICLES=16`), printed as
  `queue_efficiency_batching_worker`.

`queue_efficiency` is the ratio of wall-clock rates. On a shared machine the worker's
processes and the in-process run get different shares of the CPU, so the ratio of
articles per CPU-second (all threads; the worker's whole process tree) is printed too as
`queue_efficiency_per_cpu_second`: what the queue, the task and the store cost on top of
the pipeline, whatever else runs.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import SCALES, Scale, bench_redis_db, news_article, note, report
from benchmarks.service import Service, toy_models_dir, wait_final, write_jsonl

CLI_BATCH = 16  # what `babelwire process` batches (worker.cli.pipeline_cmds.BATCH_SIZE)
BATCH_WINDOW_MS = 20  # the batching worker's window (BABELWIRE_BATCH_WINDOW_MS default)


def articles(count: int, seed: int, tag: str) -> list[dict]:
    rng = random.Random(seed)
    return [{**news_article(rng, rng.randint(6, 10)), "id": f"{tag}-{i}"} for i in range(count)]


@dataclass(frozen=True)
class Rate:
    articles: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.articles / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.articles / self.cpu_s


def in_process_rate(service: Service, batch: list[dict], warm: list[dict]) -> Rate:
    from pipeline.article import validate_article
    from pipeline.process import process_batch
    from worker.runtime import build_engines

    settings = service.settings_object()
    engines = build_engines(settings)
    engines.warm_up()
    valid = [validate_article(a, settings.limits) for a in batch]
    process_batch([validate_article(a, settings.limits) for a in warm], engines)
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(valid), CLI_BATCH):
        process_batch(valid[i : i + CLI_BATCH], engines)
    return Rate(len(valid), time.perf_counter() - started, time.process_time() - cpu_started)


def service_rate(service: Service, batch: list[dict], warm: list[dict], workdir: Path, *worker_args: str) -> Rate:
    store = service.store()
    try:
        with service.worker(*worker_args) as worker:
            warm_report, _ = service.enqueue(write_jsonl(workdir / "warm.jsonl", warm))
            wait_final(store, warm_report["job_ids"], timeout=300)
            worker.wait_quiet()
            cpu_started = worker.cpu_seconds()
            batch_report, _ = service.enqueue(write_jsonl(workdir / "batch.jsonl", batch))
            ids = batch_report["job_ids"]
            if len(ids) != len(batch):
                raise RuntimeError(f"enqueue accepted {len(ids)} of {len(batch)}: {batch_report}")
            rows = wait_final(store, ids, timeout=3600)
            cpu = worker.cpu_seconds() - cpu_started
        failed = [r.id for r in rows if r.status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} jobs failed, e.g. {store.job(failed[0]).error}")
        seconds = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
        return Rate(len(rows), seconds, cpu)
    finally:
        store.close()


def run(scale: Scale, workdir: Path) -> None:
    batch = articles(scale.queue_articles, seed=21, tag="q")
    warm = articles(4, seed=22, tag="warm")
    with bench_redis_db() as redis_url:
        service = Service(workdir / "queue-efficiency", redis_url, toy_models_dir(),
                          settings={"translation_memory": "false"})
        local = in_process_rate(service, batch, warm)
        queued = service_rate(service, batch, warm, workdir)
        # the bulk worker that batches across articles (pipeline/batching.py): one process,
        # CLI_BATCH threads sharing each model call
        batching = Service(workdir / "queue-efficiency-batched", redis_url, toy_models_dir(),
                           settings={"translation_memory": "false", "batch_articles": str(CLI_BATCH),
                                     "batch_window_ms": str(BATCH_WINDOW_MS)})
        batched = service_rate(batching, batch, warm, workdir, "--pool", "threads", "--concurrency", str(CLI_BATCH))
    note(f"queue: {len(batch)} articles → {service.targets}; in-process {local.per_s:.1f} articles/s "
         f"({local.cpu_s / local.articles * 1000:.0f} ms CPU each); through Redis + worker "
         f"{queued.per_s:.1f} articles/s ({queued.cpu_s / queued.articles * 1000:.0f} ms CPU each, "
         f"worker process tree); batching threads worker (-P threads -c {CLI_BATCH}, batches of up to "
         f"{CLI_BATCH}) {batched.per_s:.1f} articles/s ({batched.cpu_s / batched.articles * 1000:.0f} ms CPU each)")
    report("queue_efficiency", queued.per_s / local.per_s, "ratio")
    # the same per CPU-second: what the service costs over in-process, whatever else runs
    report("queue_efficiency_per_cpu_second", queued.per_cpu_s / local.per_cpu_s, "ratio")
    report("queue_efficiency_batching_worker", batched.per_s / local.per_s, "ratio")
    report("queue_efficiency_batching_worker_per_cpu_second", batched.per_cpu_s / local.per_cpu_s, "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-queue-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
