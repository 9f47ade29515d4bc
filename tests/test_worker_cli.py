"""`babelwire enqueue / status / export` without a worker: inputs, reports, exit codes, and
messages that did not go out being sent by the next enqueue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text

from worker.store import Store


def lengths(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return {q: client.llen(q) for q in ("live", "bulk")}
    finally:
        client.close()


def test_every_input_format_streams_into_the_queue(tmp_path: Path, service_env: dict[str, str], cli_in_process: Any, redis_url: str) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "one.txt").write_text("Council approves budget\n\nThe council approved the budget on Tuesday.")
    (pages / "two.md").write_text("Storm reaches coast\n\nA storm reached the coast this morning.")
    (pages / "skip.pdf").write_text("not an article")
    csv = tmp_path / "a.csv"
    csv.write_text('id,title,text,targets\nc1,Rail strike,"The rail strike ended today.",de;fr\n')
    listing = tmp_path / "a.json"
    listing.write_text(json.dumps([{"text": "A list item article."}, {"text": "Another one."}]))

    for path, accepted in ((pages, 2), (csv, 1), (listing, 2)):
        run = cli_in_process(["enqueue", str(path), "--json"], service_env)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["accepted"] == accepted
    stdin = cli_in_process(["enqueue", "-", "--queue", "live", "--json"], service_env, input='{"text": "From standard input."}\n')
    assert stdin.returncode == 0 and json.loads(stdin.stdout)["accepted"] == 1
    assert lengths(redis_url) == {"live": 1, "bulk": 5}


def test_targets_from_the_command_line_change_the_job(tmp_path: Path, service_env: dict[str, str], cli_in_process: Any) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "The council approved the budget."}\n')
    first = json.loads(cli_in_process(["enqueue", str(path), "--json"], service_env).stdout)
    other = json.loads(cli_in_process(["enqueue", str(path), "--to", "es", "--json"], service_env).stdout)
    assert first["accepted"] == other["accepted"] == 1 and first["job_ids"] != other["job_ids"]
    store = Store(service_env["BABELWIRE_DATABASE_URL"])
    try:
        job = store.job(other["job_ids"][0])
        assert job is not None and job.options["targets"] == ["es"]
    finally:
        store.close()


def test_usage_errors_exit_2(tmp_path: Path, service_env: dict[str, str], cli_in_process: Any) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "x"}\n')
    cases = [
        (["enqueue", str(tmp_path / "missing.jsonl")], "no such file"),
        (["enqueue", str(path), "--queue", "urgent"], "--queue"),
        (["enqueue", str(path), "--to", "de,xx"], "'xx'"),
        (["export", "--since", "last tuesday"], "--since"),
    ]
    for args, message in cases:
        run = cli_in_process(args, service_env)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert message in run.stderr
    bad_env = {**service_env, "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "10", "BABELWIRE_BROKER_LEASE_RENEW_S": "5"}
    run = cli_in_process(["enqueue", str(path)], bad_env)
    assert run.returncode == 2 and "LEASE_RENEW_S" in run.stderr and "VISIBILITY_TIMEOUT" in run.stderr


def test_status_of_an_unknown_job_exits_1(service_env: dict[str, str], cli_in_process: Any) -> None:
    run = cli_in_process(["status", "no-such-job", "--json"], service_env)
    assert run.returncode == 1 and "no job" in run.stderr
    counts = cli_in_process(["status", "--json"], service_env)
    assert counts.returncode == 0
    assert json.loads(counts.stdout) == {"counts": {"queued": 0, "running": 0, "done": 0, "partial": 0, "failed": 0}}


def test_messages_that_never_went_out_are_sent_by_the_next_enqueue(
    tmp_path: Path, service_env: dict[str, str], cli_in_process: Any, redis_url: str
) -> None:
    from pipeline.article import validate_article
    from worker.config import Settings

    raw = [{"text": f"Article number {i} about the budget."} for i in range(3)]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in raw))
    store = Store(service_env["BABELWIRE_DATABASE_URL"])
    store.migrate()
    try:
        # the broker is down from the start: nothing is written, nothing sent
        broker_down = {**service_env, "BABELWIRE_BROKER_URL": "redis://127.0.0.1:1/0"}
        failed = cli_in_process(["enqueue", str(path), "--json"], broker_down)
        assert failed.returncode == 1
        assert "enqueue the same input again" in failed.stderr
        assert lengths(redis_url) == {"live": 0, "bulk": 0} and store.row_counts()["jobs"] == 0

        # a publish that fails mid-batch rolls its rows back with it
        limits = Settings(targets=service_env["BABELWIRE_TARGETS"]).limits  # as the CLI reads them
        articles = [validate_article(a, limits) for a in raw]

        def broker_gone(_: object) -> None:
            raise ConnectionError("the broker went away mid-batch")

        with pytest.raises(ConnectionError):
            store.submit(articles, "bulk", publish=broker_gone)
        assert store.row_counts()["jobs"] == 0
        # rows whose messages never went out (written by an older version, which committed
        # the rows before publishing): the next enqueue sends them
        store.submit(articles, "bulk")
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET sent_at = NULL"))
        assert store.row_counts()["jobs"] == 3 and lengths(redis_url)["bulk"] == 0
    finally:
        store.close()

    again = cli_in_process(["enqueue", str(path), "--json"], service_env)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["duplicates"] == 3 and report["accepted"] == 0
    assert lengths(redis_url)["bulk"] == 3  # the rows existed, their messages had not gone out
    third = cli_in_process(["enqueue", str(path), "--json"], service_env)
    assert json.loads(third.stdout)["duplicates"] == 3 and lengths(redis_url)["bulk"] == 3
