"""What every benchmark shares: the scale of a run, the `RESULT` line, news-like text, and
the Redis database a run may use.

A figure is always a ratio (or a rate) measured side by side in one run, so numbers from a
noisy shared machine can still be compared run to run: both sides see the same noise.
"""

from __future__ import annotations

import fcntl
import math
import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
TOY_MODELS_DIR = ROOT / "tests" / "fixtures" / "models"
# Redis databases reserved for benchmarks and their tests (the test suite uses 1–3).
BENCH_REDIS_DBS = (9, 10)
REDIS_HOST = os.environ.get("BABELWIRE_BENCH_REDIS", "127.0.0.1:6379")


@dataclass(frozen=True)
class Scale:
    """How much work each figure does. `full` is what BENCHMARKS.md reports as the real
    thing; `quick` fits 10 minutes on 2 cores; `tiny` only proves each figure runs."""

    name: str
    engine_full_size: bool  # Marian-base (6+6, d=512, 32k vocab) or a toy-sized model
    engine_sentences: int
    engine_output_tokens: int
    engine_rounds: int  # rounds interleaved between the sides; the best round of each counts
    queue_articles: int
    backlog_articles: int
    live_probes: int
    enqueue_lines: int
    memory_stream_articles: int


SCALES = {
    # The engine figure's input is the same at full and quick scale (its per-token rate
    # depends on the batch: 96 × 32 gave a third less speedup than 256 × 48); quick only
    # runs fewer rounds. enqueue_lines: full is the 1,000,000-line file of the target.
    "full": Scale("full", True, 256, 48, 3, 400, 5000, 5, 1_000_000, 2000),
    "quick": Scale("quick", True, 256, 48, 2, 160, 1000, 3, 100_000, 300),
    "tiny": Scale("tiny", False, 8, 8, 1, 6, 60, 1, 200, 12),
}


def report(name: str, value: float, unit: str) -> None:
    """The one line per figure that runs are compared by: `RESULT <name> <value> <unit>`."""
    text = "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
    print(f"RESULT {name} {text} {unit}", flush=True)


def note(message: str) -> None:
    """Context for a human reading the run (stderr, so RESULT lines stay easy to grep)."""
    print(f"  {message}", file=sys.stderr, flush=True)


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """`with timed() as elapsed: ...; elapsed()` → seconds (also after the block)."""
    start = time.perf_counter()
    end: list[float] = []
    try:
        yield lambda: (end[0] if end else time.perf_counter()) - start
    finally:
        end.append(time.perf_counter())


# --- news-like English ----------------------------------------------------------------------

_NAMES = ["Maria Lopez", "Chen Wei", "Amir Haddad", "Sofia Rossi", "John Carter", "Aisha Bello",
          "Lukas Schmidt", "Nguyen Van An", "Olga Petrova", "David Kim"]
_PLACES = ["Brussels", "Nairobi", "Hanoi", "Lima", "Warsaw", "Toronto", "Jakarta", "Lagos",
           "Madrid", "Seoul", "Cairo", "Oslo"]
_ORGS = ["the central bank", "the health ministry", "the city council", "the supreme court",
         "the electoral commission", "the national rail operator", "the port authority",
         "the finance committee", "the teachers' union", "the energy regulator"]
_VERBS = ["announced", "rejected", "approved", "postponed", "criticised", "defended",
          "proposed", "confirmed", "questioned", "welcomed"]
_THINGS = ["a new budget", "the fuel subsidy", "a tax on imports", "the rail strike",
           "an emergency plan", "the housing reform", "a ceasefire proposal",
           "the interest rate decision", "the school calendar", "a flood warning"]
_WHEN = ["on Tuesday", "late on Friday", "this week", "after a long debate", "on Monday morning",
         "before the vote", "in a statement", "at a press conference"]
_DETAILS = [
    "Officials said the measure would cost about {n} million dollars over three years.",
    "More than {n} people attended the meeting in {place}.",
    "The decision follows months of talks between {org} and local groups.",
    "{name} said the plan was necessary but warned of delays.",
    "Critics argued that the proposal ignored the needs of rural areas.",
    "The vote passed by {n} to {m}, with several members abstaining.",
    "Prices rose by {p} percent in the last quarter, according to official figures.",
    "Protesters gathered outside the building in {place} until late evening.",
    "The opposition called for an independent review of the figures.",
    "Analysts expect the effects to be felt before the end of the year.",
]
# What a newsroom's feed repeats in every story: bylines, agency lines, boilerplate.
BOILERPLATE = [
    "Reporting by {name}; editing by {name2}.",
    "This story has been updated with additional details.",
    "Follow our live coverage for the latest developments.",
    "Additional reporting by our correspondents in {place}.",
    "The ministry did not respond to a request for comment.",
]


def news_sentence(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return (f"{rng.choice(_ORGS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_THINGS)} "
                f"{rng.choice(_WHEN)}, {rng.choice(_NAMES)} said in {rng.choice(_PLACES)}.")
    return rng.choice(_DETAILS).format(
        n=rng.randint(2, 900), m=rng.randint(2, 90), p=rng.randint(1, 9),
        place=rng.choice(_PLACES), org=rng.choice(_ORGS), name=rng.choice(_NAMES),
    )


def boilerplate_sentence(rng: random.Random) -> str:
    return rng.choice(BOILERPLATE).format(
        name=rng.choice(_NAMES), name2=rng.choice(_NAMES), place=rng.choice(_PLACES)
    )


def news_article(rng: random.Random, sentences: int) -> dict:
    """An article dict (docs/contracts.md, Article) of news-like English."""
    title = f"{rng.choice(_ORGS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_THINGS)}"
    body = " ".join(news_sentence(rng) for _ in range(sentences))
    return {"title": title, "text": body + " " + boilerplate_sentence(rng)}


# --- Redis ----------------------------------------------------------------------------------


@contextmanager
def bench_redis_db(timeout_s: float = 600) -> Iterator[str]:
    """A Redis URL on one of the benchmark DBs, held with a file lock (so the smoke test and a
    benchmark run never share one), flushed before and after."""
    import redis

    deadline = time.monotonic() + timeout_s
    while True:
        for db in BENCH_REDIS_DBS:
            lock = open(f"/tmp/babelwire-bench-redis-db{db}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            url = f"redis://{REDIS_HOST}/{db}"
            client = redis.Redis.from_url(url)
            try:
                client.flushdb()
                yield url
            finally:
                try:
                    client.flushdb()
                finally:
                    client.close()
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    lock.close()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark Redis DBs {BENCH_REDIS_DBS} are all in use")
        time.sleep(1)
