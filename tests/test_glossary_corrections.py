"""Editors' corrections: recorded with the result (machine text beside), shown by the API and
export, remembered for later articles; made on the review page in a real headless Chromium."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.article import validate_article
from pipeline.result import Result
from tests.api_server import ApiServerFactory, api_servers, wait_finished  # noqa: F401  (fixture)
from tests.conftest import WorkerFactory
from tests.fixtures.build_models import EN_TO_QAA, expected_translation, toy_article, toy_sentence
from worker.store import CorrectionError, Store, StoreCorrections
from worker.store.corrections import REFRESH_S


def finished_article(store: Store, n: int = 1):
    article = validate_article({"id": f"corr-{n}", "title": "The minister met", "lang": "en", "targets": ["qaa"],
                                "text": "The minister met the people. The army won."})
    [submission] = store.submit([article], "live")
    start = store.start_job(article, submission.job_id, "live", 3)
    store.finish_job(start.job_id, Result(
        article_id=article.key, external_id=article.id, status="done", source_lang="en",
        title={"en": "The minister met", "qaa": "Ta ministo mitis"},
        summary={"en": "The minister met the people. The army won.", "qaa": "Ta ministo mitis ta pipa. Ta armo gajnis."},
        models={"summary": "extractive", "qaa": "toy-en-qaa"}))
    return article, start.job_id


def test_a_correction_replaces_the_output_keeps_the_machine_text_and_is_remembered(store: Store) -> None:
    article, job_id = finished_article(store)
    done = store.correct(article.key, "summary", "qaa", 1, "Ta armo venkis.", "Ana (token 1a2b3c4d)")
    assert (done.machine, done.editor, done.source, done.remembered) == ("Ta armo gajnis.", "Ta armo venkis.",
                                                                         "The army won.", True)
    result = store.result(job_id)
    assert result.summary["qaa"] == "Ta ministo mitis ta pipa. Ta armo venkis."
    [entry] = result.corrections["qaa"]["summary"]
    assert (entry["sentence"], entry["machine"], entry["editor"], entry["by"]) == (
        1, "Ta armo gajnis.", "Ta armo venkis.", "Ana (token 1a2b3c4d)")
    # corrected again: the machine text stays the model's
    store.correct(article.key, "summary", "qaa", 1, "Ta armo triumfis.", "Ben")
    [entry] = store.result(job_id).corrections["qaa"]["summary"]
    assert (entry["machine"], entry["editor"], entry["by"]) == ("Ta armo gajnis.", "Ta armo triumfis.", "Ben")
    store.correct(article.key, "title", "qaa", 0, "Ta ministo renkontis", "Ana")
    assert store.result(job_id).title["qaa"] == "Ta ministo renkontis"
    exported = [r.to_dict() for r in store.iter_results()]
    assert exported[0]["summary"]["qaa"].endswith("Ta armo triumfis.") and exported[0]["corrections"]["qaa"]["title"]

    corrections = StoreCorrections(store, refresh_s=0)
    assert corrections.get("en", "qaa", "The army  won.") == "Ta armo triumfis."  # normalized like the pipeline
    assert corrections.get("en", "qaa", "The minister met") == "Ta ministo renkontis"
    assert corrections.get("en", "qab", "The army won.") is None

    for bad, message in [
        (("summary", "qaa", 5, "x"), "sentence: 0 to 1"),
        (("summary", "en", 0, "x"), "is the source"),
        (("summary", "de", 0, "x"), "no summary in 'de'"),
        (("body", "qaa", 0, "x"), "kind: title or summary"),
        (("summary", "qaa", 0, "   "), "must not be empty"),
    ]:
        with pytest.raises(CorrectionError, match=message):
            store.correct(article.key, *bad, "Ana")


# --- on the review page, in Chromium --------------------------------------------------------------


class _Forms(HTMLParser):
    """The correction forms of the article page: data-sentence → (action, fields)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "data-sentence" in a:
            self._current = a["data-sentence"]
            self.forms[self._current] = (a["action"], {})
        elif tag == "input" and self._current and a.get("name"):
            self.forms[self._current][1][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def chromium_dom(chromium: str, profile: Path, url: str) -> str:
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--allow-file-access-from-files", "--virtual-time-budget=10000",
         f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_correction_on_the_review_page_reaches_api_export_and_the_next_article(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory,
    api_servers: ApiServerFactory, cli_in_process,
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium missing: apt-get install -y chromium (.ci/run does)"
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa"}
    workers.start(env, "--pool", "solo")
    server = api_servers.start(env)
    rng = random.Random(23)
    lead = toy_sentence(rng)  # the toy summarizer keeps the first sentence: the summary
    article = {"id": "fix-1", "title": toy_sentence(rng).rstrip("."), "text": lead + " " + toy_article(rng, 3),
               "lang": "en"}
    with server.client() as client:
        job_id = client.post("/v1/articles", json=article).json()["jobs"][0]["job_id"]
        result = wait_finished(client, job_id)["result"]
    machine = expected_translation(lead, EN_TO_QAA)
    assert result["summary"]["qaa"] == machine

    page = chromium_dom(chromium, tmp_path / "profile", f"{server.url}/articles/fix-1")
    forms = _Forms()
    forms.feed(page)
    action, fields = forms.forms["qaa-summary-0"]
    assert fields == {"kind": "summary", "lang": "qaa", "sentence": "0", "editor": "", "glossary_term": "",
                      "glossary_rendering": ""}
    corrected = "Editora frazo por " + machine
    # the same form, filled in and sent by the browser (the page itself runs no scripts)
    fields.update(text=corrected, editor="Mira", glossary_term="Zorblatt Industries")
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items() if k != "text")
    sender = tmp_path / "send.html"
    sender.write_text(f'<form id="f" method="post" action="{server.url}{action}">{inputs}'
                      f'<textarea name="text">{corrected}</textarea></form>'
                      '<script>document.getElementById("f").submit()</script>', encoding="utf-8")
    after = chromium_dom(chromium, tmp_path / "profile", sender.as_uri())
    assert 'data-correction="qaa-summary-0"' in after and "corrected by Mira" in after  # redirected to the page

    with server.client() as client:
        shown = client.get("/v1/articles/fix-1").json()["job"]["result"]
    assert shown["summary"]["qaa"] == corrected
    [entry] = shown["corrections"]["qaa"]["summary"]
    assert (entry["sentence"], entry["machine"], entry["editor"], entry["by"]) == (0, machine, corrected, "Mira")
    exported = cli_in_process(["export"], env)
    assert exported.returncode == 0
    [line] = [json.loads(x) for x in exported.stdout.splitlines()]
    assert line["summary"]["qaa"] == corrected and line["corrections"] == shown["corrections"]
    # the glossary entry made in the same step: Zorblatt Industries kept, en→qaa
    listed = cli_in_process(["glossary", "list", "--json"], env)
    assert json.loads(listed.stdout) == {"source": "en", "target": "qaa", "term": "Zorblatt Industries",
                                         "rendering": None, "keep": True}

    # the next article with that sentence gets the editor's translation (workers look again
    # at the corrections at most every 5 s)
    time.sleep(REFRESH_S + 1)
    again = {"id": "fix-2", "title": "Another title", "text": lead + " " + toy_article(rng, 2), "lang": "en"}
    with server.client() as client:
        job_id = client.post("/v1/articles", json=again).json()["jobs"][0]["job_id"]
        second = wait_finished(client, job_id)["result"]
    assert second["summary"]["en"] == lead and second["summary"]["qaa"] == corrected
