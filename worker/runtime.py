"""Builds what a process needs to run the pipeline from settings: the engines over the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.config import Settings

if TYPE_CHECKING:
    from models.engines import ModelEngines
    from models.memory import TranslationMemory


def build_engines(settings: Settings, memory: "TranslationMemory | None" = None) -> "ModelEngines":
    """Engines over `settings.models_dir`; nothing is loaded until first use or `warm_up()`."""
    from models.engines import ModelEngines

    return ModelEngines.open(
        settings.models_dir,
        device=settings.device,
        compute_type=settings.compute_type,
        threads=settings.threads,
        memory_mb=settings.model_memory_mb,
        memory=memory,
    )
