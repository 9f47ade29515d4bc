"""`enqueue_rate`: articles/s and peak memory of `babelwire enqueue` on a large JSONL.

The whole command as a user runs it — interpreter start, validation of every line, job rows
in the SQLite store (created and migrated beforehand, as a deployment's is), messages
published to Redis — timed from outside, with no worker consuming. Full scale enqueues
1,000,000 lines (quick: 100,000; 6–12 sentences each, ~850 bytes a line), once without
`--json` (what a bulk load runs: counts only) — the rate and the peak RSS — and once more a
10,000-line head of the same file, so that the memory's growth per line can be told from
the interpreter's fixed size: `enqueue_rss_growth_mb_per_100k_lines` is ~0 when memory is
flat, the same verdict at any scale. The run checks that every line was accepted and that
the `bulk` queue holds one message per article afterwards. The interpreter's start-up alone
(`babelwire --help`) is measured too and shown, since it is a fixed cost inside the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, SCALES, Scale, bench_redis_db, news_article, note, report
from benchmarks.service import Service, babelwire_command, toy_models_dir

DISTINCT_BODIES = 10_000  # articles generated; each line gets its own title, so its own job
HEAD_LINES = 10_000  # the small run that gives the interpreter's fixed memory


def write_articles(path: Path, lines: int, seed: int = 41) -> Path:
    """`lines` JSONL news articles, each a distinct job (numbered title and id)."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(min(lines, DISTINCT_BODIES)):
        article = news_article(rng, rng.randint(6, 12))
        bodies.append((json.dumps(article["title"], ensure_ascii=False)[:-1],
                       json.dumps(article["text"], ensure_ascii=False)))
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            title, text = bodies[i % len(bodies)]
            f.write(f'{{"id": "e{i}", "title": {title} ({i})", "text": {text}}}\n')
    return path


@dataclass(frozen=True)
class EnqueueRun:
    accepted: int
    seconds: float
    peak_rss_mb: float  # the enqueue process's own peak (getrusage of the waited child)


def enqueue_counts(service: Service, path: Path, timeout: float = 3600) -> EnqueueRun:
    """`babelwire enqueue PATH --queue bulk` (no --json: counts only, as a bulk load runs)."""
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([*babelwire_command(), "enqueue", str(path), "--queue", "bulk"],
                                env=service.env(), stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text()
    found = re.search(r"accepted (\d+), duplicates (\d+), rejected (\d+)", text)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"enqueue failed ({proc.returncode}): {text[-2000:]} {err_path.read_text()[-3000:]}")
    return EnqueueRun(int(found.group(1)), seconds, usage.ru_maxrss / 1024)


def run(scale: Scale, workdir: Path) -> None:
    import redis

    workdir.mkdir(parents=True, exist_ok=True)
    lines = scale.enqueue_lines
    path = write_articles(workdir / f"enqueue-{lines}.jsonl", lines)
    head_lines = min(HEAD_LINES, max(1, lines // 10))
    head = workdir / f"enqueue-head-{head_lines}.jsonl"
    with path.open("rb") as src, head.open("wb") as dst:
        for _ in range(head_lines):
            dst.write(src.readline())
    with bench_redis_db() as redis_url:
        client = redis.Redis.from_url(redis_url)
        service = Service(workdir / "enqueue-rate", redis_url, toy_models_dir())
        service.store().close()  # a deployment's database exists (and is migrated) before anyone enqueues
        started = time.perf_counter()
        subprocess.run([*babelwire_command(), "--help"], env=service.env(), capture_output=True, cwd=ROOT, check=True)
        startup = time.perf_counter() - started
        whole = enqueue_counts(service, path)
        queued = client.llen("bulk")
        client.flushdb()
        small = enqueue_counts(Service(workdir / "enqueue-rate-head", redis_url, toy_models_dir()), head)
        client.close()
    if whole.accepted != lines or queued != lines or small.accepted != head_lines:
        raise RuntimeError(f"{lines} lines: {whole.accepted} accepted, {queued} messages queued; "
                           f"head {head_lines}: {small.accepted} accepted")
    growth = (whole.peak_rss_mb - small.peak_rss_mb) / ((lines - head_lines) / 100_000)
    note(f"enqueue: {lines} lines ({path.stat().st_size / 1e6:.0f} MB) in {whole.seconds:.1f} s, "
         f"of which ~{startup:.2f} s interpreter start-up; {queued} messages on 'bulk'; peak RSS "
         f"{whole.peak_rss_mb:.0f} MB ({small.peak_rss_mb:.0f} MB for the first {head_lines} lines)")
    report("enqueue_rate", lines / whole.seconds, "articles/s")
    report("enqueue_peak_rss_mb", whole.peak_rss_mb, "MB")
    report("enqueue_rss_growth_mb_per_100k_lines", growth, "MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-enqueue-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
