"""The small interface through which the pipeline asks for models.

`models.engines.ModelEngines` implements it with CTranslate2; tests may implement it with
anything. The pipeline never imports `models` for inference: it is handed an `Engines`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from pipeline.protect import ProtectedSentence


@runtime_checkable
class Translation(Protocol):
    """A way to get from one language to another (one model, or a composition of two)."""

    name: str  # what the result's "models" map shows, e.g. "opus-mt-en-de" or "a+b" for a pivot
    source: str
    target: str


@runtime_checkable
class Summarizer(Protocol):
    name: str
    max_input_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes as model input (chunks are packed against max_input_tokens)."""

    def summarize_batch(self, texts: Sequence[str], max_tokens: int) -> list[str]:
        """One summary per text, all in one batched call."""


class Engines(Protocol):
    def summarizer(self, lang: str) -> Summarizer | None:
        """The abstractive summarizer serving `lang`, or None (the pipeline then goes extractive)."""

    def translation(self, source: str, target: str) -> Translation:
        """The best route source→target: direct > many-to-many > pivot. Raises NoModelError."""

    def translate(
        self, jobs: Sequence[tuple[Translation, Sequence["str | ProtectedSentence"]]]
    ) -> list[list[str]]:
        """Translate each job's sentences; everything bound for one model goes in one batch.
        A `ProtectedSentence`'s spans come out unchanged (a glossary term as its rendering)."""
