"""Abstractive summaries with a CTranslate2 seq2seq model (BART, PEGASUS, T5/mT5 families).

The pipeline packs an article's sentences into chunks by `count_tokens` against
`max_input_tokens` and does map→reduce; this engine summarizes one batch of texts in one
`translate_batch` call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

from models.loader import ModelCache
from models.exceptions import ManifestError
from models.manifest import Manifest
from models.memory import normalize_sentence

log = logging.getLogger(__name__)


# Decoding settings a manifest's `generation` may set (CTranslate2's names).
GENERATION_KEYS = frozenset(
    {"beam_size", "length_penalty", "repetition_penalty", "no_repeat_ngram_size", "min_decoding_length"}
)


@dataclass(frozen=True)
class SummarizeOptions:
    """Defaults for models whose manifest does not say how they decode. Published
    summarizers come with their own (`generation`: DistilBART-CNN and PEGASUS use beam
    search with no repeated trigrams); a model is decoded the way it was published."""

    beam_size: int = 4
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_decoding_length: int = 0
    max_batch_tokens: int = 8192

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.max_batch_tokens < 1 or self.no_repeat_ngram_size < 0:
            raise ValueError("beam_size and max_batch_tokens must be >= 1, no_repeat_ngram_size >= 0")

    def with_generation(self, generation: dict, model_name: str) -> "SummarizeOptions":
        unknown = set(generation) - GENERATION_KEYS
        if unknown:
            log.warning("%s: ignoring unknown generation settings %s", model_name, sorted(unknown))
        return replace(self, **{k: v for k, v in generation.items() if k in GENERATION_KEYS})


class Seq2SeqSummarizer:
    """Satisfies `pipeline.engines.Summarizer` for one summarization model of the store."""

    def __init__(self, manifest: Manifest, cache: ModelCache, options: SummarizeOptions | None = None):
        if manifest.task != "summarization":
            raise ManifestError(f"{manifest.name} is a {manifest.task} model, not a summarizer")
        self.manifest = manifest
        self.cache = cache
        self.options = (options or SummarizeOptions()).with_generation(manifest.generation, manifest.name)
        self.name = manifest.name
        tokenizer = cache.tokenizer(manifest.name)
        # Every input carries the special tokens and the task prefix ("summarize: "): the
        # room left for the text itself is what chunks are packed against.
        self._prefix_tokens = tokenizer.count([manifest.source_prefix])[0] if manifest.source_prefix else 0
        self.max_input_tokens = manifest.input_limit - tokenizer.num_special_tokens - self._prefix_tokens
        if self.max_input_tokens < 1:
            raise ManifestError(f"{manifest.name}: input_limit {manifest.input_limit} leaves no room for text")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.cache.tokenizer(self.name).count([normalize_sentence(t) for t in texts])

    def summarize_batch(self, texts: Sequence[str], max_tokens: int) -> list[str]:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 (got {max_tokens})")
        if not texts:
            return []
        model = self.cache.get(self.name)
        tokenizer = model.tokenizer
        prefix = self.manifest.source_prefix
        sources = []
        for text in texts:
            pieces = tokenizer.pieces(normalize_sentence(text))[: self.max_input_tokens]
            prompt = tokenizer.pieces(prefix) if prefix else []
            sources.append(tokenizer.prefix + prompt + pieces + tokenizer.suffix)
        options = self.options
        hypotheses = model.translate_batch(
            sources,
            beam_size=options.beam_size,
            length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            min_decoding_length=min(options.min_decoding_length, max_tokens),
            batch_type="tokens",
            max_batch_size=options.max_batch_tokens,
            max_input_length=0,  # inputs were cut to the model's limit above
            max_decoding_length=max_tokens,
            replace_unknowns=self.manifest.replace_unknowns,
        )
        return tokenizer.decode(hypotheses)
