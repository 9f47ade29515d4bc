"""The shared translation memory: `models.memory.TranslationMemory` on Redis.

Every worker process asks Redis before translating a sentence and tells it after, so a
byline, an agency boilerplate line or a story re-sent with a new headline is translated
once per model, across all workers, until the entry expires.

- One round trip each way: `get_many` is pipelined MGETs, `set_many` pipelined `SET … EX`.
- Keys are `models.memory.memory_key` (model, direction, hash of the normalized sentence)
  with the model's *fingerprint* in place of its bare name, so replacing a model in the
  store (same name, new weights) never serves the old model's translations.
- It is a cache, so it fails open: when Redis is unreachable, lookups miss and stores are
  skipped for `retry_after_s`, and translation goes on without it (logged once per outage).
- Hits, misses and errors are counted in the process (`stats()`) and, summed over all
  workers, in the Redis hash `<prefix>stats`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "bw:tm:"
MGET_CHUNK = 500  # keys per MGET inside the one pipeline (keeps single commands small)
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
# What identifies a model's weights cheaply: the manifest and the weights' size and edges.
FINGERPRINT_EDGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class MemoryStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    errors: int = 0

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


def model_fingerprint(model_dir: Path) -> str:
    """A short hash of the model's manifest, the size of its weights and their first and last
    64 KiB: changes whenever a model is replaced, costs two small reads."""
    digest = hashlib.sha256()
    for name in ("babelwire.json", "config.json"):
        path = model_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    weights = model_dir / "model.bin"
    if weights.is_file():
        size = weights.stat().st_size
        digest.update(str(size).encode())
        with weights.open("rb") as f:
            digest.update(f.read(FINGERPRINT_EDGE_BYTES))
            f.seek(max(0, size - FINGERPRINT_EDGE_BYTES))
            digest.update(f.read(FINGERPRINT_EDGE_BYTES))
    return digest.hexdigest()[:12]


class ModelFingerprints:
    """Fingerprint per model name, recomputed when the weights file changes (one stat per
    model per lookup). Without a store directory, the name is its own fingerprint."""

    def __init__(self, models_dir: Path | None):
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if self.models_dir is None:
            return name
        model_dir = self.models_dir / name
        try:
            st = (model_dir / "model.bin").stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            return name
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        versioned = f"{name}@{model_fingerprint(model_dir)}"
        with self._lock:
            self._cache[name] = (stamp, versioned)
        return versioned


class RedisTranslationMemory:
    """`TranslationMemory` on Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: int,
        prefix: str = DEFAULT_PREFIX,
        models_dir: Path | None = None,
        retry_after_s: float = 30.0,
    ):
        if ttl_s < 1:
            raise ValueError(f"ttl_s must be >= 1 (got {ttl_s})")
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self._fingerprint = ModelFingerprints(models_dir)
        self._lock = threading.Lock()
        self._hits = self._misses = self._stores = self._errors = 0
        self._down_until = 0.0

    @classmethod
    def from_url(cls, url: str, *, ttl_s: int, prefix: str = DEFAULT_PREFIX,
                 models_dir: Path | None = None) -> "RedisTranslationMemory":
        # Short timeouts: a cache that hangs would cost more than it saves.
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return cls(client, ttl_s=ttl_s, prefix=prefix, models_dir=models_dir)

    def redis_key(self, key: str) -> str:
        """`memory_key` → the Redis key: prefix, and the model name made `name@fingerprint`."""
        name, sep, rest = key.partition(":")
        return f"{self.prefix}{self._fingerprint(name)}{sep}{rest}"

    @property
    def stats_key(self) -> str:
        return f"{self.prefix}stats"

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        if not self._available():
            return [None] * len(keys)
        redis_keys = [self.redis_key(k) for k in keys]
        try:
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(redis_keys), MGET_CHUNK):
                pipe.mget(redis_keys[start : start + MGET_CHUNK])
            found = [value for chunk in pipe.execute() for value in chunk]
            values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in found]
            hits = sum(v is not None for v in values)
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(self.stats_key, "hits", hits)
            pipe.hincrby(self.stats_key, "misses", len(values) - hits)
            pipe.execute()
        except UNAVAILABLE as exc:
            self._went_down(exc)
            return [None] * len(keys)
        with self._lock:
            self._hits += hits
            self._misses += len(values) - hits
        return values

    def set_many(self, items: dict[str, str]) -> None:
        if not items or not self._available():
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, text in items.items():
                pipe.set(self.redis_key(key), text, ex=self.ttl_s)
            pipe.execute()
        except UNAVAILABLE as exc:
            self._went_down(exc)
            return
        with self._lock:
            self._stores += len(items)

    def stats(self) -> MemoryStats:
        """This process's counts."""
        with self._lock:
            return MemoryStats(self._hits, self._misses, self._stores, self._errors)

    def shared_stats(self) -> MemoryStats:
        """All processes' lookups, from Redis (stores and errors are per process only)."""
        raw = self.client.hgetall(self.stats_key)
        counts = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
        return MemoryStats(hits=counts.get("hits", 0), misses=counts.get("misses", 0))

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            self._errors += 1
            was_up = time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self.retry_after_s
        if was_up:
            log.warning("translation memory unavailable (%s); translating without it for %.0f s (pid %d)",
                        exc, self.retry_after_s, os.getpid())
