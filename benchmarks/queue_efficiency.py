"""`queue_efficiency`: articles/s through Redis + a real worker over articles/s in-process.

Same articles (news-like English, 6–10 sentences, distinct), same models (the toy models of
`tests/fixtures/models`), same targets (qaa, qab), translation memory off on both sides (it
has its own figure):

- in-process: `process_batch` over batches of 16 articles, as `babelwire process` runs
  them, on engines built from the same settings as the worker's; results are not stored;
- service: `babelwire enqueue --queue bulk` of the same articles into a warm
  `babelwire worker` (default pool and concurrency), from the first job's creation to the
  last job's finish, as the store records them (storing results included).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from benchmarks.common import SCALES, Scale, bench_redis_db, news_article, note, report
from benchmarks.service import Service, toy_models_dir, wait_final, write_jsonl

CLI_BATCH = 16  # what `babelwire process` batches (worker.cli.pipeline_cmds.BATCH_SIZE)


def articles(count: int, seed: int, tag: str) -> list[dict]:
    rng = random.Random(seed)
    return [{**news_article(rng, rng.randint(6, 10)), "id": f"{tag}-{i}"} for i in range(count)]


def in_process_rate(service: Service, batch: list[dict], warm: list[dict]) -> float:
    from pipeline.article import validate_article
    from pipeline.process import process_batch
    from worker.runtime import build_engines

    settings = service.settings_object()
    engines = build_engines(settings)
    engines.warm_up()
    valid = [validate_article(a, settings.limits) for a in batch]
    process_batch([validate_article(a, settings.limits) for a in warm], engines)
    started = time.perf_counter()
    for i in range(0, len(valid), CLI_BATCH):
        process_batch(valid[i : i + CLI_BATCH], engines)
    return len(valid) / (time.perf_counter() - started)


def service_rate(service: Service, batch: list[dict], warm: list[dict], workdir: Path) -> float:
    store = service.store()
    try:
        with service.worker():
            warm_report, _ = service.enqueue(write_jsonl(workdir / "warm.jsonl", warm))
            wait_final(store, warm_report["job_ids"], timeout=300)
            batch_report, _ = service.enqueue(write_jsonl(workdir / "batch.jsonl", batch))
            ids = batch_report["job_ids"]
            if len(ids) != len(batch):
                raise RuntimeError(f"enqueue accepted {len(ids)} of {len(batch)}: {batch_report}")
            rows = wait_final(store, ids, timeout=3600)
        failed = [r.id for r in rows if r.status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} jobs failed, e.g. {store.job(failed[0]).error}")
        seconds = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
        return len(rows) / seconds
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
    note(f"queue: {len(batch)} articles → qaa,qab with the toy models; in-process {local:.1f} articles/s, "
         f"through Redis + worker {queued:.1f} articles/s")
    report("queue_efficiency", queued / local, "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-queue-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
