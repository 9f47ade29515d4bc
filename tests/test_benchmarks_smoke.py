"""`python -m benchmarks --tiny`: every figure runs end to end and prints its RESULT line.

No speed is asserted (the machine is shared and the tiny scale measures nothing): this
proves the entry point, each figure's harness (model builds, worker subprocesses, Redis on
the benchmark DBs, the store) and the line format, so a change that breaks a benchmark is
caught by the tests and not on the day someone needs the numbers.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from benchmarks.__main__ import FIGURES
from benchmarks.common import ROOT
from tests.conftest import redis_host

RESULT_LINE = re.compile(r"^RESULT (\S+) (\S+) (\S+)$")


@pytest.mark.slow
def test_every_figure_prints_a_result_line(tmp_path, toy_models_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BABELWIRE_", "HF_"))}
    env["BABELWIRE_BENCH_REDIS"] = redis_host()  # the session's Redis (the machine's, or its own)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--workdir", str(tmp_path)],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    results = {}
    for line in done.stdout.splitlines():
        match = RESULT_LINE.match(line)
        assert match, f"stdout carries only RESULT lines, got {line!r}"
        name, value, unit = match.groups()
        results[name] = (float(value), unit)
    for figure in FIGURES.values():
        printed = [name for name in results if name == figure or name.startswith(figure + "_")]
        assert printed, f"no RESULT line for {figure}: {sorted(results)}"
        for name in printed:
            value, _ = results[name]
            assert math.isfinite(value), f"{name} = {value}"
    assert 0 <= results["translation_memory_hit_rate"][0] <= 1
    assert results["queue_efficiency"][0] > 0 and results["enqueue_rate"][0] > 0


def test_unknown_figure_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "unknown figure" in done.stderr
