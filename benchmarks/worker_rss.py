"""`worker_rss_over_model_size`: a worker's peak memory over the size of the model files it
loaded.

The store holds the Marian-base-sized en→de model of the engine figure (int8, ~80 MB of
files; reused from that figure's work directory when it ran first). `babelwire worker`
starts with its defaults (prefork, one pool process per core; each process loads the
models once, at start), then works off a batch of news-like articles, to `de`, while the
RSS of the whole process tree (parent and pool processes) is sampled every 0.25 s. The
figure is peak RSS / model files. The target, `RSS ≤ 1.3 × model files + 300 MB`, is
checked and shown as `worker_rss_headroom_mb` (positive: under the target).

RSS summed over forked processes counts pages they share (the interpreter, libraries, the
language detector the main process loads before it forks) once per process; the
proportional set size (PSS), which splits them, is reported alongside as
`worker_pss_over_model_size`: what the worker really takes. Beyond
`--tiny`, the same is measured for `babelwire worker -P threads` (one process, the models
loaded once, two tasks at a time), the configuration for memory-bound machines.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from benchmarks.common import SCALES, Scale, bench_redis_db, news_article, note, report
from benchmarks.service import Service, wait_final, write_jsonl

MB = 2**20
RSS_RUN_INPUT_LIMIT = 64


def model_store(scale: Scale, workdir: Path) -> Path:
    """The engine figure's store if it is there, else build it the same way."""
    from benchmarks.engine import MARIAN_BASE, TOY_SHAPE, build_checkpoint, install_converted

    store = workdir / "engine" / "store"
    if not any(store.glob("*/babelwire.json")):
        checkpoint = build_checkpoint(workdir / "engine" / "hf-checkpoint",
                                      MARIAN_BASE if scale.engine_full_size else TOY_SHAPE)
        install_converted(checkpoint, store)
    # The random model never emits </s>: cap its outputs (the input limit caps decoding) so
    # the batch takes seconds, not minutes. Memory does not depend on it.
    for manifest_path in store.glob("*/babelwire.json"):
        manifest = json.loads(manifest_path.read_text())
        manifest["input_limit"] = RSS_RUN_INPUT_LIMIT
        manifest_path.write_text(json.dumps(manifest, indent=2))
    return store


def run(scale: Scale, workdir: Path, *celery_args: str, label: str = "") -> None:
    from models.store import ModelStore

    store_dir = model_store(scale, workdir)
    model_bytes = sum(ModelStore(store_dir).size_bytes(name) for name in ModelStore(store_dir).names())
    rng = random.Random(51)
    batch = [{**news_article(rng, 8), "id": f"rss{i}"} for i in range(max(4, scale.queue_articles // 10))]
    with bench_redis_db() as redis_url:
        service = Service(workdir / f"worker-rss{label}", redis_url, store_dir, targets="de",
                          settings={"translation_memory": "false"})
        store = service.store()
        try:
            with service.worker(*celery_args) as worker:
                worker.start_sampling()
                idle_rss, _ = worker.memory()
                enqueued, _ = service.enqueue(write_jsonl(service.workdir / "batch.jsonl", batch))
                rows = wait_final(store, enqueued["job_ids"], timeout=3600)
                peak_rss, peak_pss = worker.peak_memory()
                processes = len(worker.processes())
                loads = worker.log.count("loaded model ")
        finally:
            store.close()
    if any(r.status == "failed" for r in rows):
        raise RuntimeError("articles failed in the RSS run")
    target = 1.3 * model_bytes + 300 * MB
    note(f"rss{label}: {processes} processes ({loads} 'loaded model' lines in the worker log), "
         f"model files {model_bytes / MB:.0f} MB; RSS idle "
         f"{idle_rss / MB:.0f} MB, peak {peak_rss / MB:.0f} MB (PSS {peak_pss / MB:.0f} MB); "
         f"target 1.3 × models + 300 MB = {target / MB:.0f} MB")
    report(f"worker_rss_over_model_size{label}", peak_rss / model_bytes, "x")
    report(f"worker_rss_headroom_mb{label}", (target - peak_rss) / MB, "MB")
    # the memory the tree really takes (shared pages split between the processes sharing them)
    report(f"worker_pss_over_model_size{label}", peak_pss / model_bytes, "x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    scale = SCALES[args.scale]
    with tempfile.TemporaryDirectory(prefix="bw-bench-rss-") as tmp:
        workdir = args.workdir or Path(tmp)
        run(scale, workdir)
        if scale.name != "tiny":  # the alternative: one process, models loaded once, two task threads
            run(scale, workdir, "-P", "threads", label="_threads_pool")


if __name__ == "__main__":
    main()
