"""Helpers for tests/test_models_core.py: install converted checkpoints into a model store
under any name and manifest (routing tests need many store entries, not many trainings)."""

from __future__ import annotations

import shutil
from pathlib import Path

from models.manifest import Manifest, TokenizerSpec

# Toy language tokens of the multi-target test checkpoint (OPUS-MT style `>>xxx<<`).
LANGUAGE_TOKENS = {"en": ">>en<<", "qaa": ">>qaa<<", "qab": ">>qab<<", "qac": ">>qac<<"}


def install_marian(
    converted: Path, checkpoint: Path, store_root: Path, name: str, **manifest_fields
) -> Manifest:
    """Copy a converted Marian model and its SentencePiece files to `store_root/name` with a
    manifest made of `manifest_fields` (task defaults to translation)."""
    model_dir = store_root / name
    shutil.copytree(converted, model_dir)
    for spm in ("source.spm", "target.spm"):
        shutil.copy(checkpoint / spm, model_dir / spm)
    fields = {
        "task": "translation",
        "family": "marian",
        "tokenizer": TokenizerSpec(type="sentencepiece", source="source.spm", target="target.spm"),
        "input_limit": 128,
        **manifest_fields,
    }
    manifest = Manifest(name=name, **fields)
    manifest.save(model_dir)
    return manifest


def multi_target(pairs: list[tuple[str, str]]) -> dict:
    """Manifest fields of a `>>xxx<<` multi-target model serving `pairs`."""
    return {
        "pairs": [list(p) for p in pairs],
        "target_selection": "source_token",
        "language_tokens": dict(LANGUAGE_TOKENS),
    }


def many_to_many(languages: list[str]) -> dict:
    return {
        "sources": list(languages),
        "targets": list(languages),
        "target_selection": "source_token",
        "language_tokens": dict(LANGUAGE_TOKENS),
    }
