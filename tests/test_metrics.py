"""Prometheus metrics: the API's /metrics and a prefork worker's own port move after a job;
the figures read at scrape time (queue depth, jobs by status) and the model statistics come
from the real Redis, the real store and real CTranslate2 models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.api_server import ApiServerFactory, api_servers, free_port, sample, scrape, wait_finished, wait_until  # noqa: F401
from tests.conftest import WorkerFactory
from models.store import ModelStore
from tests.fixtures.build_models import toy_article, toy_sentence


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the store is covered on both in test_api
def test_api_and_worker_metrics_move_after_a_job(
    service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, api_servers: ApiServerFactory
) -> None:
    worker_port = free_port()
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab"}
    # prefork with one pool process: figures are written by the pool process and served by
    # the main process (prometheus_client's multiprocess mode)
    workers.start({**env, "BABELWIRE_METRICS_PORT": str(worker_port)}, "--pool", "prefork", "--concurrency", "1")
    server = api_servers.start(env)
    worker_url, api_url = f"http://127.0.0.1:{worker_port}/metrics", f"{server.url}/metrics"

    api_before, worker_before = scrape(api_url), scrape(worker_url)
    assert sample(api_before, "babelwire_jobs", status="done") == 0
    assert sample(api_before, "babelwire_broker_up") == 1 and sample(api_before, "babelwire_database_up") == 1
    assert sample(worker_before, "babelwire_articles_total", status="done", queue="live") == 0

    rng = random.Random(7)
    article = {"title": toy_sentence(rng).rstrip("."), "text": toy_article(rng, 6), "lang": "en"}
    with server.client() as client:
        job_id = client.post("/v1/articles", json=article).json()["jobs"][0]["job_id"]
        assert wait_finished(client, job_id)["status"] == "done"

    api_after = scrape(api_url)
    assert sample(api_after, "babelwire_jobs", status="done") == 1
    assert sample(api_after, "babelwire_api_articles_total", outcome="accepted") == 1
    assert sample(api_after, "babelwire_http_requests_total", method="POST", route="/v1/articles", code="202") == 1
    assert sample(api_after, "babelwire_http_requests_total", method="GET", route="/v1/jobs/{job_id}", code="200") >= 1
    assert sample(api_after, "babelwire_queue_depth", queue="live") == 0
    assert ("babelwire_queue_depth", (("queue", "bulk"),)) in api_after

    # the worker's figures are recorded after the task returns: wait for the scrape to show them
    worker_after = wait_until(
        lambda: (s := scrape(worker_url)) and sample(s, "babelwire_articles_total", status="done", queue="live") == 1 and s,
        30, "the worker's article counter",
    )
    for stage in ("clean", "detect", "summarize", "translate"):
        assert sample(worker_after, "babelwire_stage_seconds_count", stage=stage) == 1, stage
    assert sample(worker_after, "babelwire_article_seconds_count", queue="live") == 1
    for model in ("toy-en-qaa", "toy-en-qab", "toy-lead-en"):
        assert sample(worker_after, "babelwire_model_input_tokens_total", model=model) > 0, model
        assert sample(worker_after, "babelwire_model_output_tokens_total", model=model) > 0, model
        # loaded at the pool process's start (warm-up), counted with its first task
        assert sample(worker_after, "babelwire_model_loads_total", model=model) == 1, model
        assert sample(worker_after, "babelwire_model_load_seconds_count", model=model) == 1, model
        size = ModelStore(toy_models_dir).size_bytes(model)
        assert size > 0 and sample(worker_after, "babelwire_model_loaded_bytes", model=model) == size, model
    assert sample(worker_after, "babelwire_queue_depth", queue="live") == 0


def test_queue_depth_is_read_from_redis_at_scrape_time(redis_url: str) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from worker.metrics import QueueDepthCollector

    client = redis.Redis.from_url(redis_url)
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(client))
    client.rpush("bulk", *[f"m{i}" for i in range(5)])
    client.rpush("live", "m")
    text = generate_latest(registry).decode()
    assert 'babelwire_queue_depth{queue="bulk"} 5.0' in text
    assert 'babelwire_queue_depth{queue="live"} 1.0' in text
    client.delete("bulk")
    assert 'babelwire_queue_depth{queue="bulk"} 0.0' in generate_latest(registry).decode()
    client.close()


def test_model_statistics_become_counters_once(toy_models_dir: Path) -> None:
    """Each sync adds only what the engines did since the previous one."""
    from prometheus_client import CollectorRegistry

    from models.engines import ModelEngines
    from worker.metrics import ModelStatsTracker, WorkerMetrics

    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry)
    tracker = ModelStatsTracker(metrics)
    engines = ModelEngines.open(toy_models_dir, device="cpu", compute_type="float32", threads=1)

    def value(name: str, **labels: Any) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    route = engines.translation("en", "qaa")
    engines.translate([(route, ["the cat sees the dog.", "the dog sees the cat."])])
    tracker.sync(engines)
    first_in = value("babelwire_model_input_tokens_total", model="toy-en-qaa")
    first_out = value("babelwire_model_output_tokens_total", model="toy-en-qaa")
    assert first_in >= 2 * 6 and first_out >= 2 * 5  # two sentences of 5 words and a full stop
    assert value("babelwire_model_loads_total", model="toy-en-qaa") == 1
    assert value("babelwire_model_load_seconds_count", model="toy-en-qaa") == 1
    assert value("babelwire_model_loaded_bytes", model="toy-en-qaa") == engines.store.size_bytes("toy-en-qaa")

    tracker.sync(engines)  # nothing new happened: nothing is added
    assert value("babelwire_model_input_tokens_total", model="toy-en-qaa") == first_in

    engines.translate([(route, ["the bird sees the cat."])])  # a new sentence: one more call
    tracker.sync(engines)
    assert value("babelwire_model_input_tokens_total", model="toy-en-qaa") > first_in
    assert value("babelwire_model_loads_total", model="toy-en-qaa") == 1  # loaded once

    engines.cache.unload("toy-en-qaa")
    tracker.sync(engines)
    assert value("babelwire_model_loaded_bytes", model="toy-en-qaa") == 0
