"""The Redis translation memory (`worker.translation_memory`), on a real Redis (DB 9–10,
shared with the benchmarks through a file lock) and real CTranslate2 models."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import redis

from benchmarks.common import bench_redis_db
from models.engines import ModelEngines
from models.memory import memory_key
from models.translation import TranslateOptions
from tests.checkpoints import build_marian, convert_checkpoint
from tests.models_core_helpers import install_marian
from worker.config import Settings
from worker.runtime import build_engines
from worker.translation_memory import RedisTranslationMemory

TEXTS = [
    "Reporting by Maria Lopez; editing by David Kim.",
    "The council approved the new budget on Tuesday evening.",
    "Prices rose.",
]
GREEDY = TranslateOptions(beam_size=1, max_decoding_length=12)


@pytest.fixture(scope="module")
def redis_url() -> str:
    with bench_redis_db() as url:
        yield url


@pytest.fixture
def client(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[int, tuple[Path, Path]]:
    """Two random-weight Marian models (seeds 1 and 2): same shape, different outputs."""
    root = tmp_path_factory.mktemp("tm-marian")
    built = {}
    for seed in (1, 2):
        checkpoint = build_marian(root / f"hf{seed}", seed=seed)
        built[seed] = (checkpoint, convert_checkpoint(checkpoint, root / f"ct2-{seed}"))
    return built


def install(checkpoints, store: Path, seed: int, name: str = "mt-en-qaa") -> None:
    if (store / name).exists():
        shutil.rmtree(store / name)
    checkpoint, converted = checkpoints[seed]
    install_marian(converted, checkpoint, store, name, pairs=[["en", "qaa"]])


def engines_with(store: Path, memory) -> ModelEngines:
    return ModelEngines.open(store, compute_type="float32", memory=memory, translate_options=GREEDY)


def test_round_trip_with_ttl_and_misses_as_none(client, redis_url):
    memory = RedisTranslationMemory.from_url(redis_url, ttl_s=120)
    keys = [memory_key("m", "en", "de", t) for t in TEXTS]
    assert memory.get_many(keys) == [None, None, None]
    memory.set_many({keys[0]: "Bericht von Maria Lopez.", keys[2]: "Die Preise stiegen. ✓"})
    assert memory.get_many(keys) == ["Bericht von Maria Lopez.", None, "Die Preise stiegen. ✓"]
    assert memory.get_many([]) == []
    for key in (memory.redis_key(keys[0]), memory.redis_key(keys[2])):
        assert 0 < client.ttl(key) <= 120
    assert memory.stats().hits == 2 and memory.stats().misses == 4 and memory.stats().stores == 2
    # keys never carry the text, only its hash
    assert all("Maria" not in k.decode() for k in client.keys("*"))


def test_large_lookups_are_chunked_but_answered_in_order(client, redis_url):
    memory = RedisTranslationMemory.from_url(redis_url, ttl_s=60)
    keys = [memory_key("m", "en", "de", f"sentence {i}") for i in range(1234)]
    memory.set_many({k: f"satz {i}" for i, k in enumerate(keys) if i % 3 == 0})
    values = memory.get_many(keys)
    assert values == [f"satz {i}" if i % 3 == 0 else None for i in range(1234)]


def test_engines_ask_the_memory_first_and_workers_share_it(client, redis_url, checkpoints, tmp_path):
    store = tmp_path / "store"
    install(checkpoints, store, seed=1)
    first_worker = engines_with(store, RedisTranslationMemory.from_url(redis_url, ttl_s=60, models_dir=store))
    route = first_worker.translation("en", "qaa")
    expected = first_worker.translate([(route, TEXTS)])[0]

    # a second process with its own engines: no model call at all, same outputs, and the
    # sentence differing only in spacing hits the same entry
    memory = RedisTranslationMemory.from_url(redis_url, ttl_s=60, models_dir=store)
    second_worker = engines_with(store, memory)
    respaced = ["  " + TEXTS[0].replace(" ", "   "), *TEXTS[1:]]
    assert second_worker.translate([(second_worker.translation("en", "qaa"), respaced)])[0] == expected
    assert "mt-en-qaa" not in second_worker.load_stats()  # never even loaded
    assert memory.stats().hits == 3 and memory.stats().misses == 0
    shared = memory.shared_stats()
    assert (shared.hits, shared.misses) == (3, 3)

    # what the memory holds is what comes out
    memory.set_many({memory_key("mt-en-qaa", "en", "qaa", "Prices rose."): "remembered"})
    assert second_worker.translate([(route, ["Prices rose."])]) == [["remembered"]]


def test_a_replaced_model_does_not_get_the_old_models_translations(client, redis_url, checkpoints, tmp_path):
    store = tmp_path / "store"
    install(checkpoints, store, seed=1)
    memory = RedisTranslationMemory.from_url(redis_url, ttl_s=60, models_dir=store)
    engines = engines_with(store, memory)
    old = engines.translate([(engines.translation("en", "qaa"), TEXTS)])[0]

    install(checkpoints, store, seed=2)  # same name, new weights, as after a re-pull
    fresh = engines_with(store, memory)
    new = fresh.translate([(fresh.translation("en", "qaa"), TEXTS)])[0]
    assert fresh.load_stats()["mt-en-qaa"].batch_calls == 1  # translated, not remembered
    without_memory = engines_with(store, None)
    assert new == without_memory.translate([(without_memory.translation("en", "qaa"), TEXTS)])[0]
    assert new != old


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


def test_an_unreachable_redis_costs_the_cache_not_the_translation(checkpoints, tmp_path, caplog):
    store = tmp_path / "store"
    install(checkpoints, store, seed=1)
    memory = RedisTranslationMemory.from_url(f"redis://127.0.0.1:{_closed_port()}/9", ttl_s=60, models_dir=store)
    engines = engines_with(store, memory)
    route = engines.translation("en", "qaa")
    with caplog.at_level("WARNING"):
        out = engines.translate([(route, TEXTS)])[0]
        engines.translate([(route, TEXTS)])
    without = engines_with(store, None)
    assert out == without.translate([(without.translation("en", "qaa"), TEXTS)])[0]
    assert memory.stats().errors == 1  # then it stops trying for retry_after_s
    assert sum("translation memory unavailable" in r.message for r in caplog.records) == 1


def test_build_engines_hands_in_the_memory_from_settings(redis_url, tmp_path):
    base = dict(models_dir=tmp_path, broker_url=redis_url)
    engines = build_engines(Settings(**base, translation_memory_ttl_s=77, translation_beam_size=1))
    assert isinstance(engines.memory, RedisTranslationMemory) and engines.memory.ttl_s == 77
    assert engines.translate_options.beam_size == 1
    assert build_engines(Settings(**base, translation_memory=False)).memory is None
    assert build_engines(Settings(models_dir=tmp_path, broker_url="amqp://guest@localhost//")).memory is None
    other = build_engines(Settings(**base, translation_memory_url="redis://127.0.0.1:6379/10"))
    assert other.memory.client.connection_pool.connection_kwargs["db"] == 10
