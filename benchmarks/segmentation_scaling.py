"""`segmentation_scaling_ratio_8x`: time to split 8× the text over time to split 1×, worst case.

Inputs: "A. ", "U.S. " and "Mr. " repeated (hostile text that once made the splitter
quadratic: 56 s for 100 kB) and news-like prose, each as one paragraph, through
`split_sentences` with `en` (pysbd) and with `vi` (the rule-based splitter). The two sizes
are timed in turn, several times, in CPU time, and the fastest run of each counts, so a
busy machine inflates neither side; the 1× side is the 8× text's eight eighths, so both
sides read the same text.
The figure is the largest ratio over all inputs: ~8 for a linear splitter, ~64 for a
quadratic one (target: under 10). `…_text_stages` is the same ratio for everything before
the models (`prepare`: clean, detect, segment).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from pathlib import Path
from typing import Callable

from benchmarks.common import SCALES, Scale, news_sentence, note, report

# characters at 1× and timed repetitions per size, by scale
_SIZES = {"full": (16_000, 9), "quick": (8_000, 5), "tiny": (1_000, 1)}
_UNITS = {"A.": "A. ", "U.S.": "U.S. ", "Mr.": "Mr. "}
_LANGS = ("en", "vi")


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _prose(size: int) -> str:
    rng = random.Random(7)
    text = ""
    while len(text) < size:
        text += news_sentence(rng) + " "
    return text[:size]


def _timed_once(work: Callable[[], object]) -> float:
    """One run's CPU seconds (time spent waiting for a busy machine's cores does not count),
    the garbage collector held off meanwhile."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        work()
        return time.process_time() - started
    finally:
        gc.enable()


def _ratio(work: Callable[[str], object], make: Callable[[int], str], size: int, repeats: int) -> tuple[float, float, float]:
    """Time for the 8× input over time for the 1× input. The 8× input is whole; the 1× time
    is that of its eight eighths, one by one, over eight, so both sides read the very same
    text and pay the same share of its rare costs (pysbd compiles a pattern per new sentence,
    and now and then the `re` module's cache drops and recompiles its fixed ones): only the
    cost of size itself differs. Each side is the fastest of `repeats`, the two in turn so
    both see the same load."""
    large = make(8 * size)
    eighths = [large[i * size : (i + 1) * size] for i in range(8)]
    work(large)  # warm up: pysbd's rules, the language identifier
    t_small = t_large = float("inf")
    for _ in range(repeats):
        t_small = min(t_small, _timed_once(lambda: [work(text) for text in eighths]) / 8)
        t_large = min(t_large, _timed_once(lambda: work(large)))
    return t_large / t_small, t_small, t_large


def run(scale: Scale) -> None:
    from pipeline.article import Limits, validate_article
    from pipeline.process import prepare
    from pipeline.segment import split_sentences

    size, repeats = _SIZES[scale.name]
    inputs: dict[str, Callable[[int], str]] = {
        **{name: (lambda n, unit=unit: _repeat(unit, n)) for name, unit in _UNITS.items()},
        "prose": _prose,
    }
    limits = Limits(max_text_chars=8 * size)
    worst_split, worst_stages = 0.0, 0.0
    for name, make in inputs.items():
        for lang in _LANGS:
            ratio, t1, t8 = _ratio(lambda text: split_sentences(text, lang), make, size, repeats)
            worst_split = max(worst_split, ratio)
            stages, s1, s8 = _ratio(lambda text: prepare(validate_article({"text": text, "lang": lang}, limits)),
                                    make, size, repeats)
            worst_stages = max(worst_stages, stages)
            note(f"{name:>5} {lang}: split {size:,} chars {t1 * 1000:.1f} ms, {8 * size:,} chars "
                 f"{t8 * 1000:.1f} ms (x{ratio:.1f}); text stages {s1 * 1000:.1f} / {s8 * 1000:.1f} ms (x{stages:.1f})")
    report("segmentation_scaling_ratio_8x", worst_split, "x")
    report("segmentation_scaling_ratio_8x_text_stages", worst_stages, "x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)  # accepted like every figure's; nothing is written
    args = parser.parse_args()
    run(SCALES[args.scale])


if __name__ == "__main__":
    main()
