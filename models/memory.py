"""Translation memory: sentences already translated by a model are not translated again.

`models/` only defines the interface and the key; a shared implementation (Redis) is
handed in from `worker/`. `DictMemory` is the in-process one (the `process` CLI, tests).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Protocol, Sequence, runtime_checkable

from pipeline.protect import normalize_sentence

__all__ = ["DictMemory", "TranslationMemory", "memory_key", "normalize_sentence"]


@runtime_checkable
class TranslationMemory(Protocol):
    def get_many(self, keys: list[str]) -> list[str | None]:
        """The stored translation for each key, None where there is none."""

    def set_many(self, items: dict[str, str]) -> None:
        """Store translations by key."""


def memory_key(model_name: str, source: str, target: str, sentence: str) -> str:
    """Key of one (model, direction, sentence); the sentence is normalized and hashed so keys
    stay short and never carry text. Case counts ("Apple" is not "apple"); a protected
    sentence is keyed on `ProtectedSentence.memory_text` (its spans and their renderings)."""
    digest = hashlib.sha256(normalize_sentence(sentence).encode("utf-8")).hexdigest()[:40]
    return f"{model_name}:{source}:{target}:{digest}"


class DictMemory:
    """A bounded in-process memory (oldest entries dropped first)."""

    def __init__(self, max_items: int = 100_000):
        self.max_items = max_items
        self._items: dict[str, str] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self._lock:
            return [self._items.get(key) for key in keys]

    def set_many(self, items: dict[str, str]) -> None:
        with self._lock:
            self._items.update(items)
            while len(self._items) > self.max_items:
                del self._items[next(iter(self._items))]

    def __len__(self) -> int:
        return len(self._items)
