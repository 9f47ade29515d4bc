"""The HTTP API as a real uvicorn process, against the real Redis and SQLite/PostgreSQL
(`database_url` runs each test on both unless a test pins it), with a real worker where a
job has to finish."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis

from tests.api_server import ApiServerFactory, api_servers, wait_finished  # noqa: F401  (fixture)
from tests.conftest import WorkerFactory
from tests.fixtures.build_models import toy_article, toy_sentence
from worker.store import Store

TOKENS = ("tok-alpha-0123456789", "tok-beta-9876543210")


def queue_lengths(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return {q: client.llen(q) for q in ("live", "bulk")}
    finally:
        client.close()


def toy(seed: int, **extra: Any) -> dict[str, Any]:
    rng = random.Random(seed)
    return {"title": toy_sentence(rng).rstrip("."), "text": toy_article(rng, 5), "lang": "en", **extra}


def test_tokens_size_limits_and_validation_details(
    service_env: dict[str, str], api_servers: ApiServerFactory, redis_url: str, store: Store
) -> None:
    env = {**service_env, "BABELWIRE_API_TOKENS": ",".join(TOKENS), "BABELWIRE_API_MAX_BODY_BYTES": "20000",
           "BABELWIRE_API_MAX_ARTICLES": "3", "BABELWIRE_MAX_TEXT_CHARS": "500"}
    server = api_servers.start(env)
    article = {"id": "auth-1", "title": "A title", "text": "One sentence. Another one.", "lang": "en"}

    with server.client() as anonymous:
        missing = anonymous.post("/v1/articles", json=article)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/v1/jobs/whatever").status_code == 401
        assert anonymous.get("/v1/articles/auth-1").status_code == 401
        basic = anonymous.post("/v1/articles", json=article, headers={"Authorization": "Basic dG9rOng="})
        assert basic.status_code == 401
        # operations endpoints stay open (documented): probes and Prometheus send no token
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/metrics").status_code == 200
    with server.client(TOKENS[0] + "x") as wrong:
        assert wrong.post("/v1/articles", json=article).status_code == 403
        assert wrong.get("/v1/jobs/whatever").status_code == 403
    assert queue_lengths(redis_url) == {"live": 0, "bulk": 0}
    assert store.row_counts()["jobs"] == 0  # nothing unauthenticated was written

    with server.client(TOKENS[1]) as client:
        # 413 from Content-Length, before the body is read
        big = {**article, "text": "word " * 5000}
        too_big = client.post("/v1/articles", json=big)
        assert too_big.status_code == 413
        assert "20,000" in too_big.json()["detail"]

        # 413 for a chunked body (no Content-Length) once the streamed bytes pass the limit
        def chunks() -> Iterator[bytes]:
            yield b'{"text": "'
            for _ in range(100):
                yield b"x" * 1000
            yield b'"}'

        streamed = client.post("/v1/articles", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413

        # 422: every bad field named, with its index in the list
        batch = [
            article,
            {**article, "text": "y" * 600},
            {**article, "targets": ["de", "zz"]},
            {"title": "no text"},
        ]
        too_many = client.post("/v1/articles", json=batch)
        assert too_many.status_code == 422
        assert "at most 3 articles" in too_many.json()["detail"][0]["msg"]
        # a list with no valid article: 422, every bad field named with its index
        invalid = client.post("/v1/articles", json=batch[1:3])
        assert invalid.status_code == 422
        details = invalid.json()["detail"]
        assert [d["loc"] for d in details] == [["body", 0, "text"], ["body", 1, "targets"]]
        assert "at most 500 characters (got 600)" in details[0]["msg"]
        assert "unknown language code 'zz'" in details[1]["msg"]
        missing_text = client.post("/v1/articles", json=[{"title": "no text"}])
        assert missing_text.json()["detail"][0]["loc"] == ["body", 0, "text"]
        one = client.post("/v1/articles", json={**article, "summary": {"max_tokens": 5000}})
        assert one.status_code == 422
        assert one.json()["detail"][0]["loc"] == ["body", "summary", "max_tokens"]
        unknown = client.post("/v1/articles", json={**article, "colour": "red"})
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "colour"]
        garbage = client.post("/v1/articles", content=b"{not json", headers={"Content-Type": "application/json"})
        assert garbage.status_code == 422 and "invalid JSON" in garbage.json()["detail"][0]["msg"]
        assert client.post("/v1/articles", json=[]).status_code == 422
        assert client.post("/v1/articles", json="just a string").status_code == 422
        # nothing of a rejected request was enqueued or stored
        assert queue_lengths(redis_url) == {"live": 0, "bulk": 0}
        assert store.row_counts()["jobs"] == 0

        accepted = client.post("/v1/articles", json=article)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["accepted"] == 1 and body["duplicates"] == 0
        job = body["jobs"][0]
        assert job["external_id"] == "auth-1" and not job["duplicate"]
        assert client.get(job["status_url"]).json()["status"] == "queued"
        assert client.get("/v1/jobs/no-such-job").status_code == 404
        assert client.get("/v1/articles/no-such-article").status_code == 404
    assert queue_lengths(redis_url) == {"live": 1, "bulk": 0}  # the API submits to `live`


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_lists_the_routes_and_the_article_schema(service_env: dict[str, str], api_servers: ApiServerFactory) -> None:
    server = api_servers.start(service_env)
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/articles", "/v1/jobs/{job_id}", "/v1/articles/{article_id}", "/healthz", "/metrics"} <= set(schema["paths"])
    post = schema["paths"]["/v1/articles"]["post"]
    assert {"202", "401", "403", "413", "422"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]["anyOf"]  # generated from the declared body
    assert body[0] == {"$ref": "#/components/schemas/Article"}
    article = schema["components"]["schemas"]["Article"]
    assert {"text", "targets", "summary"} <= set(article["properties"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert not any(path.startswith("/articles") for path in schema["paths"])  # review pages are for people


def test_submit_poll_finished_result_and_resubmission(
    service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, api_servers: ApiServerFactory,
    redis_url: str, store: Store,
) -> None:
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab",
           "BABELWIRE_API_TOKENS": TOKENS[0]}
    workers.start(env, "--pool", "solo")
    server = api_servers.start(env)
    articles = [toy(1, id="site-1"), toy(2, id="site-2", targets=["qab"])]
    with server.client(TOKENS[0]) as client:
        response = client.post("/v1/articles", json=articles)
        assert response.status_code == 202, response.text
        submitted = response.json()
        assert submitted["accepted"] == 2 and submitted["duplicates"] == 0
        job_ids = [j["job_id"] for j in submitted["jobs"]]

        first = wait_finished(client, job_ids[0])
        result = first["result"]
        assert first["status"] == "done" and result["status"] == "done", first
        assert result["job_id"] == job_ids[0] and result["external_id"] == "site-1"
        assert result["source_lang"] == "en" and result["errors"] == {}
        assert set(result["summary"]) == {"en", "qaa", "qab"} and all(result["summary"].values())
        assert set(result["title"]) == {"en", "qaa", "qab"} and all(result["title"].values())
        assert result["models"]["qaa"] == "toy-en-qaa" and result["models"]["qab"] == "toy-en-qab"
        assert {"clean", "detect", "summarize", "translate"} <= set(result["timings_ms"])
        second = wait_finished(client, job_ids[1])
        assert set(second["result"]["summary"]) == {"en", "qab"}

        # the same articles again: the same jobs, flagged, and nothing sent or processed again
        again = client.post("/v1/articles", json=articles)
        assert again.status_code == 202
        assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 2
        assert [j["job_id"] for j in again.json()["jobs"]] == job_ids
        assert all(j["duplicate"] for j in again.json()["jobs"])
        single = client.post("/v1/articles", json=articles[0]).json()
        assert single["jobs"][0]["job_id"] == job_ids[0] and single["jobs"][0]["duplicate"]
        assert queue_lengths(redis_url) == {"live": 0, "bulk": 0}
        assert store.row_counts()["jobs"] == 2

        # the article by its external id and by its key: the cleaned text and the same job
        by_external = client.get("/v1/articles/site-1").json()
        assert by_external["job"]["job_id"] == job_ids[0]
        assert by_external["job"]["result"] == result
        assert by_external["source_lang"] == "en" and by_external["title"] == articles[0]["title"]
        assert by_external["cleaned_text"] and by_external["cleaned_text"].split()[:3] == articles[0]["text"].split()[:3]
        by_key = client.get(f"/v1/articles/{result['article_id']}").json()
        assert by_key["article_id"] == by_external["article_id"] == result["article_id"]

        # an edited story under the same external id is a new article; the newest wins
        edited = client.post("/v1/articles", json={**articles[0], "text": articles[0]["text"] + " The end."}).json()
        assert edited["accepted"] == 1
        newest = client.get("/v1/articles/site-1").json()
        assert newest["job"]["job_id"] == edited["jobs"][0]["job_id"]
        assert newest["other_article_ids"] == [result["article_id"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_healthz_and_submission_report_an_unreachable_broker(
    service_env: dict[str, str], api_servers: ApiServerFactory
) -> None:
    from tests.api_server import free_port

    env = {**service_env, "BABELWIRE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = api_servers.start(env)
    with server.client() as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] == "ok" and health.json()["broker"].startswith("unreachable")
        submit = client.post("/v1/articles", json={"text": "One sentence. Two sentences."})
        assert submit.status_code == 503 and submit.headers["retry-after"] == "5"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "babelwire_broker_up 0.0" in metrics.text
