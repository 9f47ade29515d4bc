"""Builds what a process needs to run the pipeline from settings: the engines over the store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from worker.config import Settings

if TYPE_CHECKING:
    from models.engines import ModelEngines
    from models.memory import TranslationMemory

log = logging.getLogger(__name__)


def build_engines(settings: Settings, memory: "TranslationMemory | None" = None) -> "ModelEngines":
    """Engines over `settings.models_dir`; nothing is loaded until first use or `warm_up()`.

    Without an explicit `memory`, the shared Redis translation memory is used when
    `settings.translation_memory` is on (see `build_translation_memory`)."""
    from models.engines import ModelEngines
    from models.translation import TranslateOptions

    if memory is None and settings.translation_memory:
        memory = build_translation_memory(settings)
    return ModelEngines.open(
        settings.models_dir,
        device=settings.device,
        compute_type=settings.compute_type,
        threads=settings.threads,
        memory_mb=settings.model_memory_mb,
        memory=memory,
        translate_options=TranslateOptions(
            beam_size=settings.translation_beam_size,
            max_batch_tokens=settings.translation_max_batch_tokens,
        ),
    )


def build_translation_memory(settings: Settings) -> "TranslationMemory | None":
    """The Redis translation memory on `translation_memory_url`, else on the broker when the
    broker is Redis; None (no shared memory) for other brokers."""
    url = settings.translation_memory_url or settings.broker_url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        log.info("translation memory off: %s is not a Redis URL", url.split("://", 1)[0] + "://…")
        return None
    from worker.translation_memory import RedisTranslationMemory

    return RedisTranslationMemory.from_url(
        url, ttl_s=settings.translation_memory_ttl_s, models_dir=settings.models_dir
    )
