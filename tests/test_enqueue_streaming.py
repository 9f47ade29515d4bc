"""`babelwire enqueue` streams: a long input never has more than about one batch of
articles in memory, and job ids are kept only when they are printed or followed."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.article import Article
from worker import submission
from worker.submission import SUBMIT_BATCH

LINES = 3 * SUBMIT_BATCH + 7


def write_lines(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps({"id": f"s{i}", "title": f"Story {i}", "text": f"The council met for the {i}th time."}) + "\n")
    return path


@pytest.fixture
def live_articles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """After each batch is submitted: how many Article objects are alive in this process."""
    counts: list[int] = []
    submit = submission.Submitter.submit

    def counting(self: Any, articles: Any, report: Any) -> Any:
        accepted = submit(self, articles, report)
        gc.collect()
        counts.append(sum(isinstance(o, Article) for o in gc.get_objects()))
        return accepted

    monkeypatch.setattr(submission.Submitter, "submit", counting)
    return counts


def test_enqueue_keeps_about_one_batch_of_articles_in_memory(
    tmp_path: Path, service_env: dict[str, str], cli_in_process: Any, live_articles: list[int], redis_url: str
) -> None:
    import redis

    path = write_lines(tmp_path / "many.jsonl", LINES)
    run = cli_in_process(["enqueue", str(path)], service_env)
    assert run.returncode == 0, run.stderr
    assert f"accepted {LINES}, duplicates 0, rejected 0" in run.stdout
    assert len(live_articles) == 4  # batches of SUBMIT_BATCH
    # the batch just submitted is alive, earlier ones are gone (the old code kept all 1,507)
    assert max(live_articles) <= SUBMIT_BATCH + 1, live_articles
    assert redis.Redis.from_url(redis_url).llen("bulk") == LINES


def test_json_report_still_lists_every_job_id_in_input_order(
    tmp_path: Path, service_env: dict[str, str], cli_in_process: Any, live_articles: list[int]
) -> None:
    path = write_lines(tmp_path / "many.jsonl", LINES)
    first = json.loads(cli_in_process(["enqueue", str(path), "--json"], service_env).stdout)
    assert first["accepted"] == LINES and len(set(first["job_ids"])) == LINES
    assert max(live_articles) <= SUBMIT_BATCH + 1, live_articles  # ids only, not the articles
    again = json.loads(cli_in_process(["enqueue", str(path), "--json"], service_env).stdout)
    assert again["duplicates"] == LINES and again["job_ids"] == first["job_ids"]


def test_report_keeps_only_what_it_is_asked_to() -> None:
    from worker.store import Submission

    article = Article(text="One sentence.")
    accepted = [submission.Accepted(i, article, Submission(job_id=f"j{i}", duplicate=i == 1, send=i != 1))
                for i in range(3)]
    counts_only = submission.SubmissionReport(keep_items=False, keep_job_ids=False)
    counts_only.add(accepted)
    assert (counts_only.accepted, counts_only.duplicates, counts_only.items, counts_only.job_ids) == (2, 1, [], [])
    ids_only = submission.SubmissionReport(keep_items=False)
    ids_only.add(accepted)
    assert ids_only.job_ids == ["j0", "j1", "j2"] and ids_only.items == []
    everything = submission.SubmissionReport()
    everything.add(accepted)
    assert everything.items == accepted and everything.job_ids == ["j0", "j1", "j2"]
