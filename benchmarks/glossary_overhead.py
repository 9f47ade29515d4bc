"""`glossary_overhead`: what protection and a 10,000-term glossary cost in throughput.

Same articles as `queue_efficiency` (news-like English, 6–10 sentences, distinct, with
numbers, names and places), same toy models and targets (qaa, qab), translation memory
off, `process_batch` over batches of 16 articles in one process. Three sides, interleaved
round by round (the best round of each counts, so a busy moment hurts no side alone):

- unprotected: `ProcessOptions(protect=False)` (what the models did before protection);
- protected: protection on, no glossary;
- glossary: protection on, and a 10,000-term glossary for each direction (en→qaa, en→qab:
  half kept terms, half renderings; a few hundred of them — the feed's names, places and
  institutions — occur in the articles, the rest never do, as in a real newsroom glossary).

`glossary_throughput_ratio` = glossary / protected (the target: at least 0.90, i.e. under
10 % cost); `glossary_throughput_ratio_protection` = protected / unprotected. Checks run
on every side (they are not switchable).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from benchmarks.common import _NAMES, _ORGS, _PLACES, SCALES, Scale, news_article, note, report
from benchmarks.service import toy_models_dir

BATCH = 16
TERMS = 10_000
TARGETS = ("qaa", "qab")


def glossary_terms(seed: int = 31) -> tuple[list[str], dict[str, str]]:
    """TERMS terms: the feed's own names, places and institutions, then invented ones."""
    rng = random.Random(seed)
    keep = list(_NAMES) + list(_PLACES)
    render = {org: f"{org.title()} (official)" for org in _ORGS}
    syllables = ["kel", "ra", "vos", "tin", "mar", "do", "zu", "pel", "ang", "ori", "sa", "bek"]
    while len(keep) + len(render) < TERMS:
        name = " ".join("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()
                        for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.5:
            keep.append(name)
        else:
            render[name] = name.upper()
    return keep, render


def run(scale: Scale, workdir: Path) -> None:
    from models.engines import ModelEngines
    from pipeline.article import validate_article
    from pipeline.process import ProcessOptions, process_batch
    from pipeline.protect import Glossaries, Glossary

    rng = random.Random(41)
    count = max(BATCH, scale.queue_articles)
    articles = [validate_article({**news_article(rng, rng.randint(6, 10)), "id": f"g-{i}", "lang": "en",
                                  "targets": list(TARGETS)}) for i in range(count)]
    keep, render = glossary_terms()
    started = time.perf_counter()
    glossaries = Glossaries(tuple((("en", t), Glossary.of(keep=keep, render=render)) for t in TARGETS))
    for target in TARGETS:  # built once per worker process; the figure is the steady state
        glossaries.get("en", target).matches("warm up")
    note(f"glossary: {len(keep) + len(render):,} terms per direction, built in "
         f"{(time.perf_counter() - started) * 1000:.0f} ms for {len(TARGETS)} directions")
    sides = {
        "unprotected": ProcessOptions(protect=False),
        "protected": ProcessOptions(),
        "glossary": ProcessOptions(glossaries=glossaries),
    }
    engines = ModelEngines.open(toy_models_dir(), device="cpu")
    engines.warm_up()
    for options in sides.values():  # warm every path once
        process_batch(articles[:BATCH], engines, options)
    rounds = 1 if scale.name == "tiny" else 3
    best: dict[str, float] = {}
    matched = 0
    for _ in range(rounds):
        for name, options in sides.items():
            start = time.perf_counter()
            for i in range(0, len(articles), BATCH):
                results = process_batch(articles[i : i + BATCH], engines, options)
                if name == "glossary":
                    matched += sum(r.checks.get(t, {}).get("checked", {}).get("keep", 0) for r in results for t in TARGETS)
            rate = len(articles) / (time.perf_counter() - start)
            best[name] = max(best.get(name, 0.0), rate)
    note(f"{len(articles)} articles → {', '.join(TARGETS)}, best of {rounds} rounds: "
         + ", ".join(f"{name} {rate:.1f} articles/s" for name, rate in best.items())
         + f"; kept-term occurrences checked with the glossary: {matched // rounds:,} per round")
    report("glossary_throughput_ratio", best["glossary"] / best["protected"], "ratio")
    report("glossary_throughput_ratio_protection", best["protected"] / best["unprotected"], "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    run(SCALES[args.scale], args.workdir or Path("."))


if __name__ == "__main__":
    main()
