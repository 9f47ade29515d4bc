"""`live_latency_under_backlog_ratio`: a live article's submit-to-done time while thousands
of bulk articles wait in the queue, over one article's processing time.

A warm `babelwire worker` (default pool and concurrency, toy models, targets qaa,qab) first
processes a few live articles one at a time on an idle queue: their median processing time
(`finished_at − started_at`) is the denominator. Then `babelwire enqueue --queue bulk`
queues the backlog, and live articles are submitted one at a time (`--queue live`) while it
is being worked off; each one's submit-to-done time (`finished_at − created_at`) is
measured, and the median is the numerator. The run checks that bulk work was still waiting
when the last live article finished, or the figure would not be "under backlog".

`full` scale queues 5,000 bulk articles; `quick` fewer (the line's name says how many).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import SCALES, Scale, bench_redis_db, note, report
from benchmarks.queue_efficiency import articles
from benchmarks.service import Service, toy_models_dir, wait_final, write_jsonl


def live_probe(service: Service, store, article: dict, workdir: Path) -> tuple[float, float]:
    """Submit one live article and wait for it: (submit-to-done, processing) seconds."""
    path = write_jsonl(workdir / f"live-{article['id']}.jsonl", [article])
    enqueued, _ = service.enqueue(path, queue="live")
    (row,) = wait_final(store, enqueued["job_ids"], timeout=600)
    if row.status == "failed":
        raise RuntimeError(f"live article failed: {row.error}")
    return (row.finished_at - row.created_at).total_seconds(), (row.finished_at - row.started_at).total_seconds()


def run(scale: Scale, workdir: Path) -> None:
    probes = articles(2 * scale.live_probes + 2, seed=31, tag="live")
    backlog = articles(scale.backlog_articles, seed=32, tag="bulk")
    workdir.mkdir(parents=True, exist_ok=True)
    with bench_redis_db() as redis_url:
        service = Service(workdir / "live-latency", redis_url, toy_models_dir(),
                          settings={"translation_memory": "false"})
        store = service.store()
        try:
            with service.worker():
                live_probe(service, store, probes[0], workdir)  # warm-up
                idle = [live_probe(service, store, a, workdir) for a in probes[1 : 1 + scale.live_probes + 1]]
                processing = statistics.median(p for _, p in idle)

                bulk, enqueue_s = service.enqueue(write_jsonl(workdir / "backlog.jsonl", backlog), queue="bulk")
                bulk_ids = bulk["job_ids"]
                time.sleep(1.0)  # let the worker get into the backlog
                loaded = [live_probe(service, store, a, workdir)
                          for a in probes[2 + scale.live_probes :][: scale.live_probes]]
                waiting = store.counts(bulk_ids)["queued"]
        finally:
            store.close()
    if waiting == 0:
        raise RuntimeError("the bulk backlog drained before the live articles finished: queue more")
    latency = statistics.median(s for s, _ in loaded)
    note(f"live: one article takes {processing * 1000:.0f} ms to process (idle submit-to-done "
         f"{statistics.median(s for s, _ in idle) * 1000:.0f} ms); with {len(bulk_ids)} bulk articles queued "
         f"(enqueued in {enqueue_s:.1f} s, {waiting} still waiting at the end) a live article took "
         f"{latency * 1000:.0f} ms (median of {len(loaded)})")
    name = "live_latency_under_backlog_ratio"
    if scale.backlog_articles != 5000:
        name += f"_backlog{scale.backlog_articles}"
    report(name, latency / processing, "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-live-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
