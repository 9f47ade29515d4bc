"""`python -m benchmarks [--quick | --tiny] [--only NAME,...] [--workdir DIR]`

Runs every figure of BENCHMARKS.md, each in its own Python process (so one figure's
threads, caches and memory never touch another's), and prints their `RESULT <name>
<value> <unit>` lines on stdout; notes on what was measured go to stderr. Exit status 1
if any figure failed. Without a flag, the full scale (the numbers BENCHMARKS.md reports);
`--quick` fits 10 minutes on 2 cores; `--tiny` only proves every figure runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT

# Module per figure, in running order (worker_rss reuses the engine figure's model).
FIGURES = {
    "engine": "engine_speedup_vs_transformers",
    "worker_rss": "worker_rss_over_model_size",
    "enqueue_rate": "enqueue_rate",
    "queue_efficiency": "queue_efficiency",
    "live_latency": "live_latency_under_backlog_ratio",
    "memory_hit_rate": "translation_memory_hit_rate",
    "glossary_overhead": "glossary_throughput_ratio",
    "webhook_overhead": "webhook_dead_receiver_throughput_ratio",
    "segmentation_scaling": "segmentation_scaling_ratio_8x",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="under 10 minutes on 2 cores")
    size.add_argument("--tiny", action="store_true", help="seconds per figure: proves each one runs")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(FIGURES)}")
    parser.add_argument("--workdir", type=Path, help="keep checkpoints, stores and logs here")
    args = parser.parse_args(argv)
    scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    names = args.only.split(",") if args.only else list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")

    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    failed = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        print(f"# babelwire benchmarks, scale {scale}, {os.cpu_count()} CPUs, work dir {workdir}", file=sys.stderr)
        for name in names:
            print(f"# {name} ({FIGURES[name]})", file=sys.stderr, flush=True)
            figure_started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--scale", scale,
                                   "--workdir", str(workdir)], env=env, cwd=ROOT)
            print(f"#   {time.perf_counter() - figure_started:.0f} s", file=sys.stderr, flush=True)
            if done.returncode != 0:
                failed.append(name)
                print(f"FAILED {name} (exit {done.returncode})", file=sys.stderr, flush=True)
    print(f"# all figures in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
