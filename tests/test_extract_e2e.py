"""HTML end to end: `POST /v1/articles` with `html` (a real article page) → Redis → a real
`babelwire worker` with the toy models → a done job whose summary and title hold no markup,
and the article's stored body (the review data) is the extracted story with its structure."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_server import ApiServerFactory, api_servers, wait_finished  # noqa: F401  (fixture)
from pipeline.clean import read_document
from tests.conftest import WorkerFactory
from tests.test_extract import REAL_PAGES, TRUTH, assert_no_markup


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_post_html_gives_a_done_job_with_a_clean_summary(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory,
    api_servers: ApiServerFactory, cli: Any,
) -> None:
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa",
           "BABELWIRE_TRANSLATION_MEMORY": "false"}
    path = REAL_PAGES[0]  # an English story (a pv-magazine page)
    page = gzip.open(path, "rt", encoding="utf8").read()
    workers.start(env, "--pool", "solo")
    server = api_servers.start(env)
    with server.client() as client:
        response = client.post("/v1/articles", json={"id": "page-1", "html": page})
        assert response.status_code == 202, response.text
        job_id = response.json()["jobs"][0]["job_id"]
        job = wait_finished(client, job_id)
        result = job["result"]
        assert job["status"] == "done" and result["status"] == "done", job
        assert result["source_lang"] == "en" and result["errors"] == {}
        assert result["summary"]["en"] and result["summary"]["qaa"] and result["title"]["en"]
        assert_no_markup(job, "job")

        article = client.get("/v1/articles/page-1").json()
        body = article["cleaned_text"]
        opening = " ".join(TRUTH[path.name.split(".")[0]]["articleBody"].split()[:8])
        assert opening in " ".join(body.split())
        assert_no_markup(article, "article")

        # the same page again is the same job
        again = client.post("/v1/articles", json={"id": "page-1", "html": page}).json()
        assert again["duplicates"] == 1 and again["jobs"][0]["job_id"] == job_id
        # pasted into text, the page is held to the text limit as sent; a CMS body fits and is read as HTML
        too_big = client.post("/v1/articles", json={"text": page})
        assert too_big.status_code == 422 and "text" in too_big.text and "100,000" in too_big.text
        meta, blocks = read_document(body)
        assert meta["title"] == result["title"]["en"] and meta["url"].startswith("https://")
        fragment = "".join(f"<p>{b.text}</p>" for b in blocks if b.kind != "heading")
        pasted = client.post("/v1/articles", json={"id": "page-2", "text": fragment}).json()
        pasted_job = wait_finished(client, pasted["jobs"][0]["job_id"])
        assert pasted_job["status"] == "done" and pasted_job["result"]["summary"]["en"]
        assert_no_markup(pasted_job, "pasted job")

        both = client.post("/v1/articles", json={"html": page, "text": "A story."})
        assert both.status_code == 422 and "html" in both.text

    # the review page shows the body with its structure: the subheading as a heading, the quote
    # and the list as such, and never a Markdown mark or a tag as text
    structured = ("<html><head><title>Port strike ends</title></head><body><article><h1>Port strike ends</h1>"
                  "<p>Dockworkers voted on Wednesday to end a week-long strike that had stranded thousands of "
                  "containers, the union said after the vote.</p><h2>Backlog to take ten days</h2>"
                  "<blockquote><p>This is a fair agreement for the members of the union, said its secretary.</p>"
                  "</blockquote><ul><li>Wages rise by six percent this year.</li><li>Night bonuses rise too.</li></ul>"
                  "<p>Operators will run extra shifts over the weekend to clear the backlog, the port said.</p>"
                  "</article></body></html>")
    with server.client() as client:
        posted = client.post("/v1/articles", json={"id": "page-3", "html": structured, "lang": "en"}).json()
        assert wait_finished(client, posted["jobs"][0]["job_id"])["status"] == "done"
        review = client.get("/articles/page-3")
    assert review.status_code == 200, review.text[:500]
    assert "<h3>Backlog to take ten days</h3>" in review.text
    assert "<blockquote>This is a fair agreement" in review.text and "<li>Night bonuses rise too.</li>" in review.text
    assert "## " not in review.text and "&lt;" not in review.text
    assert "<dt>title</dt><dd>Port strike ends</dd>" in review.text  # the page's metadata

    # enqueue: a folder of .html pages (one of them the page already done: a duplicate)
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.html").write_bytes(gzip.open(path).read())
    (folder / "b.htm").write_bytes(gzip.open(REAL_PAGES[1]).read())
    run = cli(["enqueue", str(folder), "--to", "qaa", "--wait", "--timeout", "120", "--json"], env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["accepted"] == 1 and report["duplicates"] == 1 and report["rejected"] == []
    assert report["failed"] == 0 and report["done"] + report["partial"] == 2
