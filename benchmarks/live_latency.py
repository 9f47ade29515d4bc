"""`live_latency_under_backlog_ratio`: a live article's submit-to-done time while thousands
of bulk articles wait in the queue, over that article's own processing time.

A warm `babelwire worker` (default pool and concurrency, toy models, targets qaa,qab) gets
`babelwire enqueue --queue bulk` of the backlog; while it is being worked off, live articles
are submitted one at a time (`--queue live`). For each, the store records when it was
submitted (`created_at`), started and finished: the figure is the median of
(finished − created) / (finished − started) — 1.0 would mean a live article never waits
behind the backlog; a worker that served queues first-in first-out would score in the
hundreds. Processing time is measured on the same busy machine as the wait, so CPU
contention from the bulk work running beside it does not count as waiting. For reference,
the same articles' processing time on an idle worker is shown as well.

The run checks that bulk work was still waiting when the last live article finished, or
the figure would not be "under backlog". `full` scale queues 5,000 bulk articles; `quick`
fewer; any scale queues more when the worker is fast enough to drain that many while the
live articles run (the line's name then says how many).
"""

from __future__ import annotations

import argparse
import math
import os
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


def backlog_size(scale: Scale, idle_processing_s: float, probe_wall_s: float) -> int:
    """At least the scale's backlog, and enough that it cannot drain while the live probes
    run: the idle worker's throughput (one article per `idle_processing_s` per CPU, the
    default concurrency) over the probes' expected wall time, with a 4× margin for the
    slowdown under load. On a slow or busy machine a fixed small backlog drains first and
    the figure would not be "under backlog"."""
    per_second = (os.cpu_count() or 1) / max(idle_processing_s, 1e-3)
    probes_s = 1.0 + scale.live_probes * probe_wall_s  # the settle sleep, then the probes
    return max(scale.backlog_articles, math.ceil(4 * per_second * probes_s))


def run(scale: Scale, workdir: Path) -> None:
    probes = articles(2 * scale.live_probes + 2, seed=31, tag="live")
    workdir.mkdir(parents=True, exist_ok=True)
    with bench_redis_db() as redis_url:
        service = Service(workdir / "live-latency", redis_url, toy_models_dir(),
                          settings={"translation_memory": "false"})
        store = service.store()
        try:
            with service.worker():
                live_probe(service, store, probes[0], workdir)  # warm-up
                started = time.monotonic()
                idle = [live_probe(service, store, a, workdir) for a in probes[1 : 1 + scale.live_probes + 1]]
                probe_wall_s = (time.monotonic() - started) / len(idle)

                backlog = articles(backlog_size(scale, statistics.median(p for _, p in idle), probe_wall_s),
                                   seed=32, tag="bulk")
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
    ratio = statistics.median(total / processing for total, processing in loaded)
    idle_processing = statistics.median(p for _, p in idle)
    note(f"live: idle worker: processing {idle_processing * 1000:.0f} ms, submit-to-done "
         f"{statistics.median(s for s, _ in idle) * 1000:.0f} ms; with {len(bulk_ids)} bulk articles queued "
         f"(enqueued in {enqueue_s:.1f} s, {waiting} still waiting at the end): processing "
         f"{statistics.median(p for _, p in loaded) * 1000:.0f} ms, submit-to-done "
         f"{statistics.median(s for s, _ in loaded) * 1000:.0f} ms (medians of {len(loaded)}); "
         f"submit-to-done under backlog over idle processing: "
         f"{statistics.median(s for s, _ in loaded) / idle_processing:.2f}")
    name = "live_latency_under_backlog_ratio"
    if len(bulk_ids) != 5000:
        name += f"_backlog{len(bulk_ids)}"
    report(name, ratio, "ratio")
    # the same wait against an idle worker's processing time: contention included
    report(name.replace("_ratio", "_over_idle_processing"),
           statistics.median(s for s, _ in loaded) / idle_processing, "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-live-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
