"""`babelwire models verify NAME`: load a model and run a probe through it.

Reports load time, the process' resident memory growth while loading, and output tokens
per second over a few batched probe calls, so an operator sees at once that a pulled or
imported model works on this machine and what it costs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.loader import LoadOptions, ModelCache
from models.store import ModelStore
from pipeline.languages import PIVOT

PROBE_SENTENCES = (
    "The city council approved the new budget on Tuesday evening.",
    "Heavy rain flooded several streets in the old town overnight.",
    "The minister said the talks would continue next week in Brussels.",
    "Prices rose faster than expected in the third quarter.",
)
PROBE_ROUNDS = 3


@dataclass
class VerifyReport:
    name: str
    task: str
    device: str
    compute_type: str
    ok: bool = False
    direction: str = ""  # "en→de" or "summarize en"
    load_seconds: float = 0.0
    rss_growth_mb: float = 0.0
    size_mb: float = 0.0
    output_tokens: int = 0
    probe_seconds: float = 0.0
    tokens_per_second: float = 0.0
    sample_input: str = ""
    sample_output: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _pick_direction(pairs: set[tuple[str, str]]) -> tuple[str, str]:
    """From English when the model translates from it (the probe text is English)."""
    ordered = sorted(pairs, key=lambda p: (p[0] != PIVOT, p))
    return ordered[0]


def verify_model(
    store_root: Path,
    name: str,
    *,
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
    rounds: int = PROBE_ROUNDS,
) -> VerifyReport:
    """Load model `name` from the store and time a probe; errors are in the report."""
    from models.summarization import Seq2SeqSummarizer
    from models.translation import ModelTranslation, TranslateOptions, translate_with_model

    store = ModelStore(Path(store_root))
    manifest = store.get(name)
    cache = ModelCache(store, LoadOptions(device=device, compute_type=compute_type, intra_threads=threads))
    report = VerifyReport(name=name, task=manifest.task, device=cache.device, compute_type=cache.compute_type)
    report.size_mb = round(store.size_bytes(name) / 1e6, 1)
    try:
        rss_before = _rss_bytes()
        started = time.perf_counter()
        model = cache.get(name)
        report.load_seconds = round(time.perf_counter() - started, 3)
        report.rss_growth_mb = round((_rss_bytes() - rss_before) / 1e6, 1)
        sentences = list(PROBE_SENTENCES)
        if manifest.task == "translation":
            source, target = _pick_direction(manifest.translation_pairs())
            report.direction = f"{source}→{target}"
            if source != PIVOT:
                report.notes.append(f"the probe text is English, fed to a {source} model: output is not meaningful")
            leg = ModelTranslation(source, target, manifest)
            run = lambda: translate_with_model(model, [(leg, s) for s in sentences], TranslateOptions())  # noqa: E731
        elif manifest.task == "summarization":
            lang = PIVOT if PIVOT in manifest.languages else manifest.languages[0]
            report.direction = f"summarize {lang}"
            summarizer = Seq2SeqSummarizer(manifest, cache)
            sentences = [" ".join(PROBE_SENTENCES)]
            run = lambda: summarizer.summarize_batch(sentences, 64)  # noqa: E731
        else:
            raise ValueError(f"{manifest.task} models have no probe")
        outputs: list[str] = []
        started = time.perf_counter()
        for _ in range(max(rounds, 1)):
            outputs = run()
            report.output_tokens += sum(model.tokenizer.count(outputs))
        report.probe_seconds = round(time.perf_counter() - started, 3)
        if report.probe_seconds > 0:
            report.tokens_per_second = round(report.output_tokens / report.probe_seconds, 1)
        report.sample_input = sentences[0]
        report.sample_output = outputs[0] if outputs else ""
        report.ok = bool(outputs) and all(o.strip() for o in outputs)
        if not report.ok:
            report.error = "the probe produced empty output"
    except Exception as exc:  # a broken model is what verify is for: report, don't crash
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        if cache.is_loaded(name):
            cache.unload(name)
    return report
