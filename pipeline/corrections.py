"""Editors' corrections as the pipeline sees them: a source sentence an editor translated by
hand comes out as the editor wrote it, in every later article, whichever model would serve it.

The worker hands in a view of the SQL store (worker/store/corrections.py); `FixedCorrections`
serves tests and one-off runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable

from pipeline.protect import normalize_sentence


def sentence_hash(sentence: str) -> str:
    """What a correction is found by: the normalized source sentence, hashed."""
    return hashlib.sha256(normalize_sentence(sentence).encode("utf-8")).hexdigest()


@runtime_checkable
class CorrectionSource(Protocol):
    def get(self, source: str, target: str, sentence: str) -> str | None:
        """The editor's translation of `sentence` from `source` into `target`, or None."""


@dataclass(frozen=True)
class FixedCorrections:
    """Corrections given up front: (source, target, source sentence) → translation."""

    entries: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def get(self, source: str, target: str, sentence: str) -> str | None:
        return self.entries.get((source, target, normalize_sentence(sentence)))
