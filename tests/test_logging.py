"""Structured logs: JSON lines with job id, article id and stage; no article text and no
secrets at INFO — checked on the formatter and on a real API + worker processing an article."""

from __future__ import annotations

import json
import logging
import random
import sys
from pathlib import Path

import pytest

from tests.api_server import ApiServerFactory, api_servers, json_lines, wait_finished  # noqa: F401  (fixture)
from tests.conftest import WorkerFactory
from tests.fixtures.build_models import toy_article
from worker.logging import JsonFormatter, bind, redact, secrets_of

TOKEN = "s3cret-Token-for-the-log-test-4711"
SENTENCE = "Quibblewick the zookeeper juggled seventeen marmalade hedgehogs at dawn."


def record(name: str, msg: str, *args: object, **attrs: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    for key, value in attrs.items():
        setattr(rec, key, value)
    return rec


def test_a_line_is_json_with_context_stage_and_whitelisted_fields_only() -> None:
    formatter = JsonFormatter()
    with bind(job_id="job-1", article_id="art-1"):
        line = json.loads(formatter.format(record("pipeline.clean", "cleaned %d sentences", 12, status="done")))
    assert line["msg"] == "cleaned 12 sentences" and line["level"] == "INFO" and line["logger"] == "pipeline.clean"
    assert (line["job_id"], line["article_id"], line["stage"], line["status"]) == ("job-1", "art-1", "clean", "done")
    assert line["ts"].endswith("Z")
    outside = json.loads(formatter.format(record("models.translation", "x")))
    assert "job_id" not in outside and outside["stage"] == "translate"  # the binding ended

    # Celery attaches the task's args and kwargs (the article) to its own records: only the id stays
    celery = record("celery.app.trace", "Task %s succeeded", "t-9",
                    data={"id": "t-9", "name": "babelwire.process_article", "kwargs": {"article": {"text": SENTENCE}}})
    text = formatter.format(celery)
    assert SENTENCE not in text and json.loads(text)["job_id"] == "t-9"


def test_secrets_are_redacted_wherever_they_appear() -> None:
    class Settings:
        api_tokens = (TOKEN, "ab")  # too short to redact safely: ordinary words would vanish
        broker_url = "redis://:brokerpass@redis:6379/0"
        result_backend = None
        database_url = "postgresql+psycopg://babelwire:dbpass-xyz@postgres/babelwire"

    secrets = secrets_of(Settings())
    assert set(secrets) == {TOKEN, "ab", "brokerpass", "dbpass-xyz"}
    formatter = JsonFormatter(secrets)
    line = formatter.format(record("worker.api", "token %s, header %s, url %s, other %s", TOKEN,
                                   "Authorization: Bearer anything-else", "postgresql://u:dbpass-xyz@h/db",
                                   "amqp://guest:hunter2@rabbit//", error=f"failed with {TOKEN}"))
    for secret in (TOKEN, "dbpass-xyz", "anything-else", "hunter2"):
        assert secret not in line
    assert "about" in formatter.format(record("x", "about"))  # "ab" is not redacted inside words
    try:
        raise RuntimeError(f"connect to redis://:brokerpass@redis:6379/0 failed")
    except RuntimeError:
        rec = record("worker.store", "boom")
        rec.exc_info = sys.exc_info()
    assert "brokerpass" not in formatter.format(rec)
    assert redact("redis://:pw@host/0", []) == "redis://:***@host/0"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_and_api_logs_name_the_job_and_never_the_text_or_the_token(
    service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, api_servers: ApiServerFactory
) -> None:
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab",
           "BABELWIRE_API_TOKENS": TOKEN, "BABELWIRE_LOG_LEVEL": "INFO"}
    worker = workers.start(env, "--pool", "solo")
    server = api_servers.start(env)
    article = {"id": "log-1", "title": "Marmalade hedgehogs juggled", "lang": "en",
               "text": SENTENCE + " " + toy_article(random.Random(3), 4)}
    with server.client(TOKEN) as client:
        submitted = client.post("/v1/articles", json=article).json()["jobs"][0]
        job = wait_finished(client, submitted["job_id"])
        assert job["status"] == "done"
        assert client.post("/v1/articles", json=article).json()["jobs"][0]["duplicate"]
        assert client.post("/v1/articles", json={**article, "text": ""}).status_code == 422
    job_id, article_id = submitted["job_id"], submitted["article_id"]
    server.stop()
    worker.stop()

    api_log, worker_log = server.log, worker.log
    for log_text in (api_log, worker_log):
        assert TOKEN not in log_text
        assert SENTENCE not in log_text
        for word in ("Quibblewick", "marmalade", "Marmalade", "hedgehogs"):
            assert word not in log_text, word

    api_lines = [line for line in api_log.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in api_lines)  # every API line is JSON
    api_records = json_lines(api_log)
    accepted = [r for r in api_records if r["msg"] == "article accepted"]
    assert len(accepted) == 1
    assert (accepted[0]["job_id"], accepted[0]["article_id"], accepted[0]["stage"]) == (job_id, article_id, "ingest")
    duplicate = [r for r in api_records if r["msg"] == "article duplicate"]
    assert duplicate and duplicate[0]["job_id"] == job_id
    requests = [r for r in api_records if r.get("route") == "/v1/jobs/{job_id}"]
    assert requests and all(r["stage"] == "api" and r["request_id"] for r in requests)
    assert any(r.get("status_code") == 422 for r in api_records)

    worker_records = json_lines(worker_log)
    mine = [r for r in worker_records if r.get("job_id") == job_id]
    assert any("received" in r["msg"] for r in mine)  # Celery's own line, tagged with the job
    done = [r for r in mine if r["msg"] == "article done"]
    assert len(done) == 1
    assert (done[0]["article_id"], done[0]["stage"], done[0]["status"]) == (article_id, "task", "done")
    assert {"clean", "detect", "summarize", "translate"} <= set(done[0]["timings_ms"])
    # every line logged while the task ran names the article too (Celery's "received" comes before)
    assert all(r.get("article_id") == article_id for r in mine if r["logger"] != "celery.worker.strategy")
