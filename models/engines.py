"""`ModelEngines`: the pipeline's `Engines` over a model store, with CTranslate2.

Routing for source→target: a model with that exact pair (single-pair models first) >
a many-to-many model (NLLB, M2M100) > a pivot through English, each leg routed the same
way > `NoModelError` naming the command that fetches a model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from models.catalogue import pull_hint
from models.loader import LoadOptions, ModelCache, ModelStats
from models.exceptions import ManifestError
from models.manifest import Manifest
from models.memory import TranslationMemory
from models.store import ModelStore
from models.summarization import Seq2SeqSummarizer, SummarizeOptions
from models.translation import (
    ModelTranslation,
    PivotTranslation,
    Route,
    TranslateOptions,
    translate_jobs,
)
from pipeline.exceptions import NoModelError
from pipeline.languages import PIVOT, normalize_code
from pipeline.protect import ProtectedSentence

log = logging.getLogger(__name__)


def _preference(manifest: Manifest) -> tuple:
    """Direct before many-to-many; among those, models serving fewer pairs (more specialised)
    first; then by name, so routing is deterministic."""
    return (manifest.many_to_many, len(manifest.translation_pairs()), manifest.name)


class ModelEngines:
    def __init__(
        self,
        store: ModelStore,
        cache: ModelCache,
        *,
        memory: TranslationMemory | None = None,
        translate_options: TranslateOptions | None = None,
        summarize_options: SummarizeOptions | None = None,
        pivot: str = PIVOT,
    ):
        self.store = store
        self.cache = cache
        self.memory = memory
        self.translate_options = translate_options or TranslateOptions()
        self.summarize_options = summarize_options or SummarizeOptions()
        self.pivot = pivot
        self._summarizers: dict[str, Seq2SeqSummarizer] = {}
        self.refresh()

    @classmethod
    def open(
        cls,
        models_dir: Path,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        memory_mb: int = 4096,
        memory: TranslationMemory | None = None,
        translate_options: TranslateOptions | None = None,
        summarize_options: SummarizeOptions | None = None,
    ) -> "ModelEngines":
        """Engines over the store at `models_dir`; nothing is loaded until used or `warm_up()`."""
        store = ModelStore(Path(models_dir))
        options = LoadOptions.for_threads(threads, device=device, compute_type=compute_type, memory_mb=memory_mb)
        return cls(
            store,
            ModelCache(store, options),
            memory=memory,
            translate_options=translate_options,
            summarize_options=summarize_options,
        )

    def refresh(self) -> None:
        """Re-read the store (after models were pulled or removed)."""
        manifests = self.store.manifests()
        self._translators = sorted((m for m in manifests if m.task == "translation"), key=_preference)
        self._summarizer_manifests = sorted(
            (m for m in manifests if m.task == "summarization"),
            key=lambda m: (len(m.languages), m.name),  # single-language models first
        )
        self._summarizers.clear()

    # --- summarization -------------------------------------------------------------------

    def summarizer(self, lang: str) -> Seq2SeqSummarizer | None:
        lang = normalize_code(lang)
        for manifest in self._summarizer_manifests:
            if lang in manifest.languages:
                summarizer = self._summarizers.get(manifest.name)
                if summarizer is None:
                    try:
                        summarizer = Seq2SeqSummarizer(manifest, self.cache, self.summarize_options)
                    except (ManifestError, OSError) as exc:  # broken entry: try the next one
                        log.warning("summarizer %s is unusable: %s", manifest.name, exc)
                        continue
                    self._summarizers[manifest.name] = summarizer
                return summarizer
        return None

    # --- translation ---------------------------------------------------------------------

    def _single(self, source: str, target: str) -> ModelTranslation | None:
        """The best one-model route: direct first, many-to-many after (by `_preference`)."""
        for manifest in self._translators:
            if (source, target) not in manifest.translation_pairs():
                continue
            try:
                return ModelTranslation(source, target, manifest)
            except ManifestError as exc:  # a broken manifest must not hide the other models
                log.warning("model %s cannot serve %s→%s: %s", manifest.name, source, target, exc)
        return None

    def translation(self, source: str, target: str) -> Route:
        source, target = normalize_code(source), normalize_code(target)
        if source == target:
            raise ValueError(f"nothing to translate: source and target are both {source!r}")
        route: Route | None = self._single(source, target)
        if route is None and self.pivot not in (source, target):
            first, second = self._single(source, self.pivot), self._single(self.pivot, target)
            if first is not None and second is not None:
                route = PivotTranslation(first, second)
        if route is None:
            raise NoModelError(
                f"no translation model for {source}→{target} (try: {pull_hint(source, target)})",
                source=source,
                target=target,
            )
        return route

    def translate(self, jobs: Sequence[tuple[Route, Sequence[str | ProtectedSentence]]]) -> list[list[str]]:
        return translate_jobs(jobs, self.cache, self.memory, self.translate_options)

    # --- lifecycle and metrics -----------------------------------------------------------

    def warm_up(self) -> list[str]:
        """Load every model of the store that fits the memory budget (smallest first), so a
        worker pays load time once, at start. Returns the names loaded."""
        budget = self.cache.budget_bytes
        used = self.cache.loaded_bytes()
        sizes = sorted(
            ((self.store.size_bytes(m.name), m.name) for m in self._translators + self._summarizer_manifests),
        )
        loaded = []
        for size, name in sizes:
            if self.cache.is_loaded(name):
                loaded.append(name)
                continue
            if used + size > budget:
                log.info("warm-up: %s (%.1f MB) does not fit the model memory budget", name, size / 1e6)
                continue
            self.cache.get(name)
            used += size
            loaded.append(name)
        return loaded

    def loaded_models(self) -> list[str]:
        return self.cache.loaded()

    def load_stats(self) -> dict[str, ModelStats]:
        return self.cache.load_stats()
