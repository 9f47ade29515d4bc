"""`enqueue_rate`: articles/s for `babelwire enqueue` of a 10,000-line JSONL.

The whole command as a user runs it — interpreter start, validation of every line, job rows
in the SQLite store (created and migrated beforehand, as a deployment's is), messages
published to Redis — timed from outside, with no worker consuming. The run checks that every line was accepted and that the `bulk` queue holds one
message per article afterwards. The interpreter's start-up alone (`babelwire --help`) is
measured too and shown, since it is a fixed cost inside the figure.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SCALES, Scale, bench_redis_db, news_article, note, report
from benchmarks.service import Service, babelwire_command, toy_models_dir, write_jsonl


def run(scale: Scale, workdir: Path) -> None:
    import redis

    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(41)
    lines = [{**news_article(rng, rng.randint(6, 12)), "id": f"e{i}"} for i in range(scale.enqueue_lines)]
    path = write_jsonl(workdir / "enqueue.jsonl", lines)
    with bench_redis_db() as redis_url:
        service = Service(workdir / "enqueue-rate", redis_url, toy_models_dir())
        service.store().close()  # a deployment's database exists (and is migrated) before anyone enqueues
        started = time.perf_counter()
        subprocess.run([*babelwire_command(), "--help"], env=service.env(), capture_output=True, cwd=ROOT, check=True)
        startup = time.perf_counter() - started
        result, seconds = service.enqueue(path, queue="bulk")
        queued = redis.Redis.from_url(redis_url).llen("bulk")
    if result["accepted"] != len(lines) or queued != len(lines):
        raise RuntimeError(f"{len(lines)} lines: {result['accepted']} accepted, {queued} messages queued")
    note(f"enqueue: {len(lines)} lines ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.2f} s, "
         f"of which ~{startup:.2f} s interpreter start-up; {queued} messages on 'bulk'")
    report("enqueue_rate", len(lines) / seconds, "articles/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-enqueue-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
