"""Loading CTranslate2 models: device and compute type, one instance per model per process,
least-recently-used eviction past a memory budget.

A `LoadedModel` owns one `ctranslate2.Translator` and its tokenizer (as faster-whisper's
`WhisperModel` does); every batched call goes through it, so the cache can count calls.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import ctranslate2

from models.exceptions import ManifestError
from models.manifest import Manifest
from models.store import ModelStore
from models.tokenizer import Tokenizer, load_tokenizer

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# Preferred compute types, best first; the first one the device supports is used.
AUTO_COMPUTE = {
    "cpu": ("int8", "int8_float32", "float32"),
    "cuda": ("int8_float16", "int8_bfloat16", "float16", "int8", "float32"),
}


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"
    compute_type: str = "auto"
    inter_threads: int = 1  # replicas: batches run in parallel on one copy of the weights
    intra_threads: int = 0  # threads per batch; 0 lets CTranslate2 choose
    memory_mb: int = 4096  # loaded models' file sizes, summed, before LRU eviction

    @classmethod
    def for_threads(
        cls, threads: int = 0, *, device: str = "auto", compute_type: str = "auto", memory_mb: int = 4096
    ) -> "LoadOptions":
        """`threads` CTranslate2 compute threads for this process (0: every core it may run
        on), laid out as measured fastest (BENCHMARKS.md, "Engine"): on CPU one replica per
        thread, one thread each (`inter_threads=threads, intra_threads=1`), each call split
        so that every replica works (`LoadedModel`). On 2 cores that gave 1.6–1.9× the
        tokens/s of one replica with 2 threads, whose OpenMP threads spend a quarter of their
        CPU time waiting. On a GPU one replica (its threads only feed the device)."""
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (got {threads})")
        if device == "cuda" or (device == "auto" and ctranslate2.get_cuda_device_count() > 0):
            return cls(device=device, compute_type=compute_type, inter_threads=1,
                       intra_threads=threads, memory_mb=memory_mb)
        return cls(device=device, compute_type=compute_type, inter_threads=threads or usable_cores(),
                   intra_threads=1, memory_mb=memory_mb)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES} (got {self.device!r})")
        if self.inter_threads < 1 or self.intra_threads < 0:
            raise ValueError("inter_threads must be >= 1 and intra_threads >= 0")
        if self.memory_mb < 1:
            raise ValueError(f"memory_mb must be positive (got {self.memory_mb})")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset limits)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def spread_over_replicas(lengths: Sequence[int], replicas: int, options: dict[str, Any]) -> dict[str, Any]:
    """`translate_batch` options that cut one call (inputs of these token `lengths`) into
    equal sub-batches, a multiple of `replicas` of them, so that each replica of a
    `Translator(inter_threads=replicas)` works on the call: CTranslate2 sorts the examples
    by length, cuts them by `max_batch_size` and runs the pieces in parallel, but a call
    that fits in one sub-batch runs on one replica alone, and a token cap cuts 5,000 tokens
    into 4,096 + 904 (one replica mostly idle). As few pieces as that allows (bigger
    batches cost less per token); a token cap stays a bound on every piece."""
    count = len(lengths)
    if replicas <= 1 or count <= 1:
        return options
    cap = options.get("max_batch_size", 0)
    if options.get("batch_type", "examples") == "tokens" and cap:
        longest_first = sorted(lengths, reverse=True)
        pieces = replicas * max(1, math.ceil(sum(lengths) / (cap * replicas)))
        per_piece = math.ceil(count / pieces)
        # the piece of the longest inputs must fit the cap too
        while per_piece > 1 and sum(longest_first[:per_piece]) > cap:
            pieces += replicas
            per_piece = math.ceil(count / pieces)
    else:
        per_piece = math.ceil(count / replicas)
        if cap:
            per_piece = min(per_piece, cap)
    return {**options, "batch_type": "examples", "max_batch_size": per_piece}


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ValueError("device 'cuda' was asked for but CTranslate2 sees no CUDA device")
    return device


def resolve_compute_type(device: str, compute_type: str) -> str:
    """`auto` → int8 on CPU, int8_float16 on GPU; anything the device lacks falls back to
    the best type it offers."""
    supported = set(ctranslate2.get_supported_compute_types(device))
    if compute_type != "auto":
        if compute_type in supported or compute_type == "default":
            return compute_type
        log.warning("compute type %s is not supported on %s; choosing one that is", compute_type, device)
    for candidate in AUTO_COMPUTE[device]:
        if candidate in supported:
            return candidate
    return "default"


@dataclass
class ModelStats:
    """What a model has cost and done in this process (for metrics)."""

    loads: int = 0
    last_load_seconds: float = 0.0
    total_load_seconds: float = 0.0
    batch_calls: int = 0  # translate_batch calls
    examples: int = 0  # sentences/texts sent in those calls
    input_tokens: int = 0  # source tokens sent in those calls (special tokens included)
    output_tokens: int = 0  # tokens of the best hypotheses (target prefix included)


class LoadedModel:
    """One CTranslate2 seq2seq model with its manifest and tokenizer."""

    def __init__(
        self,
        manifest: Manifest,
        translator: ctranslate2.Translator,
        tokenizer: Tokenizer,
        size_bytes: int,
        stats: ModelStats,
    ):
        self.manifest = manifest
        self.translator = translator
        self.tokenizer = tokenizer
        self.size_bytes = size_bytes
        self._stats = stats
        self._stats_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.manifest.name

    def translate_batch(self, source: Sequence[Sequence[str]], **options: Any) -> list[list[str]]:
        """One `translate_batch` call; returns the best hypothesis of each example."""
        return [hypothesis for hypothesis, _ in self.translate_batch_attention(source, **options)]

    def translate_batch_attention(
        self, source: Sequence[Sequence[str]], *, return_attention: bool = False, **options: Any
    ) -> list[tuple[list[str], list[list[float]] | None]]:
        """One `translate_batch` call; the best hypothesis of each example and, when asked,
        its attention over the source (one row per output token, prefix included)."""
        if not source:
            return []
        with self._stats_lock:
            self._stats.batch_calls += 1
            self._stats.examples += len(source)
        options = spread_over_replicas([len(s) for s in source], self.translator.num_translators, options)
        results = self.translator.translate_batch(
            [list(s) for s in source], return_attention=return_attention, **options
        )
        best = [
            (result.hypotheses[0], result.attention[0] if return_attention else None) for result in results
        ]
        with self._stats_lock:
            self._stats.input_tokens += sum(len(s) for s in source)
            self._stats.output_tokens += sum(len(h) for h, _ in best)
        return best


class ModelCache:
    """Loaded models of one process: at most one instance each, evicted least-recently-used
    once their summed size passes `memory_mb` (the model being returned is never evicted)."""

    def __init__(self, store: ModelStore, options: LoadOptions | None = None):
        self.store = store
        self.options = options or LoadOptions()
        self.device = resolve_device(self.options.device)
        self.compute_type = resolve_compute_type(self.device, self.options.compute_type)
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # oldest use first
        self._tokenizers: dict[str, Tokenizer] = {}
        self._stats: dict[str, ModelStats] = {}
        self._lock = threading.RLock()
        # one lock per model name: a slow load blocks only callers of that model
        self._load_locks: dict[str, threading.Lock] = {}

    @property
    def budget_bytes(self) -> int:
        return self.options.memory_mb * 1024 * 1024

    def tokenizer(self, name: str) -> Tokenizer:
        """The model's tokenizer without loading its weights (to count tokens, plan chunks)."""
        with self._lock:
            tokenizer = self._tokenizers.get(name)
            if tokenizer is None:
                tokenizer = load_tokenizer(self.store.path(name), self.store.get(name))
                self._tokenizers[name] = tokenizer
            return tokenizer

    def get(self, name: str) -> LoadedModel:
        with self._lock:
            model = self._hit(name)
            if model is not None:
                return model
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                model = self._hit(name)  # another thread may have loaded it meanwhile
                if model is not None:
                    return model
            model = self._load(name)
            with self._lock:
                self._loaded[name] = model
                self._evict(keep=name)
            return model

    def _hit(self, name: str) -> LoadedModel | None:
        model = self._loaded.get(name)
        if model is not None:
            self._loaded.move_to_end(name)
        return model

    def _load(self, name: str) -> LoadedModel:
        manifest = self.store.get(name)
        if manifest.task == "embedding":
            raise ManifestError(f"{name}: embedding models are not used by the translation engines")
        path = self.store.path(name)
        size = self.store.size_bytes(name)
        tokenizer = self.tokenizer(name)
        started = time.perf_counter()
        translator = ctranslate2.Translator(
            str(path),
            device=self.device,
            compute_type=self.compute_type,
            inter_threads=self.options.inter_threads,
            intra_threads=self.options.intra_threads,
        )
        seconds = time.perf_counter() - started
        with self._lock:
            stats = self._stats.setdefault(name, ModelStats())
        stats.loads += 1
        stats.last_load_seconds = seconds
        stats.total_load_seconds += seconds
        log.info("loaded model %s (%.1f MB) on %s/%s in %.2fs", name, size / 1e6, self.device, self.compute_type, seconds)
        return LoadedModel(manifest, translator, tokenizer, size, stats)

    def _evict(self, keep: str) -> None:
        while self.loaded_bytes() > self.budget_bytes:
            victim = next((n for n in self._loaded if n != keep), None)
            if victim is None:
                return  # only the model being returned is left: it stays, even if over budget
            evicted = self._loaded.pop(victim)
            log.info("evicted model %s (%.1f MB) to stay within %d MB", victim, evicted.size_bytes / 1e6, self.options.memory_mb)
            # Dropping the reference frees it once any call still running on it returns.

    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(m.size_bytes for m in self._loaded.values())

    def loaded(self) -> list[str]:
        """Names of loaded models, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def is_loaded(self, name: str) -> bool:
        with self._lock:
            return name in self._loaded

    def unload(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)

    def load_stats(self) -> dict[str, ModelStats]:
        """Per model: loads, load seconds, batched calls and examples (copies)."""
        with self._lock:
            return {name: ModelStats(**vars(stats)) for name, stats in self._stats.items()}
