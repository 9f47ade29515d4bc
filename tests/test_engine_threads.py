"""CTranslate2 threads layout (models.loader): one-thread replicas, and each call split so
that every replica works on it (BENCHMARKS.md, "Engine", for the measurements)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.engines import ModelEngines
from models.loader import LoadOptions, spread_over_replicas, usable_cores
from models.translation import TranslateOptions


def test_threads_become_one_thread_replicas_on_cpu() -> None:
    auto = LoadOptions.for_threads(0, device="cpu")
    assert (auto.inter_threads, auto.intra_threads) == (usable_cores(), 1)
    three = LoadOptions.for_threads(3, device="cpu", compute_type="int8", memory_mb=64)
    assert (three.inter_threads, three.intra_threads, three.compute_type, three.memory_mb) == (3, 1, "int8", 64)
    # a prefork pool process gets its share of the cores: one replica, one thread, as before
    assert (LoadOptions.for_threads(1, device="cpu").inter_threads, LoadOptions.for_threads(1, device="cpu").intra_threads) == (1, 1)


def test_a_gpu_gets_one_replica() -> None:
    options = LoadOptions.for_threads(4, device="cuda")
    assert (options.inter_threads, options.intra_threads) == (1, 4)


def test_negative_threads_name_the_setting() -> None:
    with pytest.raises(ValueError, match="threads"):
        LoadOptions.for_threads(-1, device="cpu")


def test_a_call_that_fits_one_sub_batch_is_cut_into_one_per_replica() -> None:
    tokens = {"batch_type": "tokens", "max_batch_size": 4096, "beam_size": 2}
    # 96 sentences of 30 tokens fit one 4096-token sub-batch: cut into 2 × 48 examples
    assert spread_over_replicas([30] * 96, 2, tokens) == {"batch_type": "examples", "max_batch_size": 48, "beam_size": 2}
    assert spread_over_replicas([30] * 7, 2, tokens)["max_batch_size"] == 4  # ceil: nothing left over
    # past the token cap: equal pieces, a multiple of the replicas, each within the cap
    assert spread_over_replicas([30] * 300, 2, tokens)["max_batch_size"] == 75  # not 136 + 136 + 28
    assert spread_over_replicas([20] * 256, 2, tokens)["max_batch_size"] == 128  # 5,120 tokens: 2 pieces, not 4096 + 1024
    # the piece holding the longest inputs decides: 6,980 tokens would fit 2 pieces, but 6
    # pieces of 43 would put 4,300 tokens in the first; 8 pieces of 32 put 3,200
    assert spread_over_replicas([100] * 60 + [5] * 196, 2, tokens)["max_batch_size"] == 32
    assert spread_over_replicas([5000] * 10, 2, tokens)["max_batch_size"] == 1
    # one replica, or one sentence: nothing to spread
    assert spread_over_replicas([30] * 96, 1, tokens) is tokens
    assert spread_over_replicas([30], 4, tokens) is tokens
    # an example cap stays a cap
    assert spread_over_replicas([30] * 96, 2, {"batch_type": "examples", "max_batch_size": 16})["max_batch_size"] == 16
    assert spread_over_replicas([30] * 96, 2, {})["max_batch_size"] == 48


def test_replicas_translate_exactly_as_one_thread_does(toy_models_dir: Path) -> None:
    """Real CTranslate2 on the toy models: 2 replicas (the call cut in two) give the same
    output as 1 replica with 1 thread, and the model is loaded once with 2 replicas."""
    sentences = [f"The council approved budget number {i} on Tuesday." for i in range(9)]
    outputs = {}
    for threads in (1, 2):
        engines = ModelEngines.open(toy_models_dir, device="cpu", compute_type="float32", threads=threads,
                                    translate_options=TranslateOptions(beam_size=2))
        route = engines.translation("en", "qaa")
        outputs[threads] = engines.translate([(route, sentences)])[0]
        loaded = engines.cache.get(engines.cache.loaded()[0])
        assert loaded.translator.num_translators == threads
        assert engines.cache.load_stats()[loaded.name].batch_calls == 1  # still one call per model
    assert outputs[2] == outputs[1]
    assert all(outputs[1])
