"""Fuzzing `POST /v1/articles` in-process (FastAPI TestClient over a real SQLite store and a real
Redis): every body is accepted (202, one job per article), refused for its size (413) or
refused with details that name the field (422) — never a 500 — and the API accepts exactly
the articles the shared schema accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pipeline.article import validate_article
from pipeline.exceptions import ArticleError
from tests.fuzz_strategies import LIMITS, article_like, articles
from worker.config import Settings

MAX_BODY = 4_000
MAX_ARTICLES = 4

bodies = (
    article_like.map(lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass"))
    | st.lists(articles, max_size=MAX_ARTICLES + 2).map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass"))
    | st.binary(max_size=200)
    # bodies of exactly the limit, one byte under and one over
    | st.integers(min_value=MAX_BODY - 1, max_value=MAX_BODY + 1).map(
        lambda n: json.dumps({"text": "w" * (n - len('{"text": ""}'))}).encode())
)


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from worker.api import create_app

    settings = Settings(
        broker_url=redis_url, database_url=f"sqlite:///{tmp_path / 'fuzz-api.db'}", models_dir=tmp_path,
        targets=LIMITS.default_targets, max_text_chars=LIMITS.max_text_chars, max_targets=LIMITS.max_targets,
        api_max_body_bytes=MAX_BODY, api_max_articles=MAX_ARTICLES,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def schema_accepts(item: Any) -> bool:
    limits = Settings(targets=LIMITS.default_targets, max_text_chars=LIMITS.max_text_chars,
                      max_targets=LIMITS.max_targets).limits
    try:
        validate_article(item, limits)
    except ArticleError:
        return False
    return True


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(bodies)
@example(json.dumps({"text": "w" * (MAX_BODY - len('{"text": ""}'))}).encode())  # exactly the limit
@example(json.dumps({"text": "w" * (MAX_BODY + 1 - len('{"text": ""}'))}).encode())  # one byte over
def test_every_body_is_accepted_or_refused_with_a_reason_never_a_server_error(client: Any, body: bytes) -> None:
    response = client.post("/v1/articles", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (202, 413, 422), (response.status_code, response.text[:500])
    event(f"HTTP {response.status_code}")
    assert (response.status_code == 413) == (len(body) > MAX_BODY)
    if response.status_code == 413:
        return
    try:
        data = json.loads(body)
    except ValueError:
        data = None  # not JSON (or not UTF-8)
    items = data if isinstance(data, list) else [data]
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert detail and all(d["loc"][0] == "body" and d["msg"] for d in detail), detail
        if isinstance(data, (dict, list)) and 0 < len(items) <= MAX_ARTICLES:
            assert not all(schema_accepts(item) for item in items)
        return
    report = response.json()
    assert isinstance(data, (dict, list)) and 0 < len(items) <= MAX_ARTICLES
    # a list: the valid items are accepted, each invalid one is reported by index and field
    rejected = {r["index"] for r in report["rejected"]}
    assert rejected == {i for i, item in enumerate(items) if not schema_accepts(item)}
    assert all(r["loc"][:2] == ["body", r["index"]] and r["field"] for r in report["rejected"])
    assert [j["index"] for j in report["jobs"]] == [i for i in range(len(items)) if i not in rejected]
    assert report["accepted"] + report["duplicates"] == len(items) - len(rejected)
    for job in report["jobs"]:
        assert client.get(job["status_url"]).status_code == 200
