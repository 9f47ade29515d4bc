"""Glossaries in the SQL store (real SQLite and PostgreSQL), the CLI that manages them, and
the worker's view of them driving real toy-model translations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.engines import ModelEngines
from models.memory import DictMemory
from pipeline.article import validate_article
from pipeline.process import ProcessOptions, process
from pipeline.result import Result
from tests.fixtures.build_models import FIXTURE_MODELS_DIR
from worker.store import GlossaryEntry, Store, StoreGlossaries


def entry(term: str, rendering: str | None, source: str = "en", target: str = "qaa") -> GlossaryEntry:
    return GlossaryEntry(source, target, term, rendering)


def test_import_list_remove_and_versions(store: Store) -> None:
    assert store.glossary_versions() == {}
    written = store.import_glossary([entry("Mira Olsen", None), entry("national parliament", "Kellerhaven Dieto"),
                                     entry("court", "Gericht", target="de")])
    assert written == {("en", "qaa"): 2, ("en", "de"): 1}
    assert store.glossary_versions() == {("en", "qaa"): 1, ("en", "de"): 1}
    # a term already there takes the new rendering; only the direction written moves
    assert store.import_glossary([entry("national parliament", "Dieto Nacia")]) == {("en", "qaa"): 1}
    assert store.glossary_versions() == {("en", "qaa"): 2, ("en", "de"): 1}
    assert store.glossary_entries(target="qaa") == [entry("Mira Olsen", None), entry("national parliament", "Dieto Nacia")]
    assert store.glossary_counts() == {("en", "de"): (1, 1), ("en", "qaa"): (2, 2)}

    assert store.remove_glossary("en", "qaa", ["Mira Olsen", "not there"]) == 1
    assert store.remove_glossary("en", "qaa", ["not there"]) == 0
    assert store.glossary_versions()[("en", "qaa")] == 3  # a removal that removes nothing changes nothing
    assert store.remove_glossary("en", "de") == 1
    assert store.glossary_entries() == [entry("national parliament", "Dieto Nacia")]


def test_a_large_import_is_one_transaction_in_chunks(store: Store) -> None:
    terms = [entry(f"Term {i}", None if i % 2 else f"Rendering {i}") for i in range(2500)]
    assert store.import_glossary(terms) == {("en", "qaa"): 2500}
    assert len(store.glossary_entries(source="en", target="qaa")) == 2500
    assert store.glossary_versions() == {("en", "qaa"): 1}


def test_the_result_keeps_its_checks_in_the_store(store: Store) -> None:
    article = validate_article({"id": "c-1", "title": "T", "text": "Body. It is news.", "targets": ["de"]})
    [submission] = store.submit([article], "live")
    start = store.start_job(article, submission.job_id, "live", 3)
    checks = {"de": {"checked": {"number": 1, "term": 0, "keep": 0, "sentences": 2},
                     "failed": [{"check": "number", "part": "summary", "sentence": 0, "expected": "6.5"}]}}
    result = Result(article_id=article.key, external_id="c-1", status="done", source_lang="en",
                    title={"en": "T", "de": "T"}, summary={"en": "Body.", "de": "Körper."}, checks=checks)
    store.finish_job(start.job_id, result)
    assert store.result(start.job_id).checks == checks
    [exported] = [r for r in store.iter_results()]
    assert exported.to_dict()["checks"] == checks


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_imports_good_rows_and_rejects_malformed_ones_with_line_numbers(tmp_path, database_url, cli_in_process):
    env = {"BABELWIRE_DATABASE_URL": database_url}
    tsv = tmp_path / "terms.tsv"
    tsv.write_text(
        "source\ttarget\tterm\trendering\n"
        "en\tde\tKellerhaven Port\tHafen Kellerhaven\n"
        "en\tde\tMira Olsen\t\n"
        "# names we keep in every language\n"
        "en\tfr\tMira Olsen\n"
        "en\tzz\tPort\tHafen\n"
        "en\ten\tPort\tHafen\n"
        "en\tde\n"
        "\n"
        f"en\tde\t{'x' * 201}\tlong\n"
        "en\tde\tKellerhaven Port\tKellerhavener Hafen\n",
        encoding="utf-8",
    )
    done = cli_in_process(["glossary", "import", str(tsv), "--json"], env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == 3
    assert report["directions"] == {"en-de": {"terms": 2, "version": 1}, "en-fr": {"terms": 1, "version": 1}}
    assert report["rejected"] == [
        f"{tsv}:6: target: unknown language code 'zz' (use ISO 639-1, e.g. 'de')",
        f"{tsv}:7: source and target are both 'en'",
        f"{tsv}:8: expected 3 or 4 columns (source, target, term, rendering), got 2",
        f"{tsv}:10: term: at most 200 characters (got 201)",
        f"{tsv}:11: term 'Kellerhaven Port' (en→de) is already on line 2 with another rendering",
    ]
    assert f"rejected {tsv}:6:" in done.stderr

    listed = cli_in_process(["glossary", "list", "--target", "de"], env)
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["en\tde\tKellerhaven Port\tHafen Kellerhaven", "en\tde\tMira Olsen\t(keep)"]

    csv_file = tmp_path / "terms.csv"
    csv_file.write_text('en,de,"Port, Kellerhaven","Hafen, Kellerhaven"\nen,de,Mira Olsen,\n', encoding="utf-8")
    assert cli_in_process(["glossary", "import", str(csv_file)], env).returncode == 0
    as_json = [json.loads(line) for line in cli_in_process(["glossary", "list", "--json"], env).stdout.splitlines()]
    assert {"source": "en", "target": "de", "term": "Port, Kellerhaven", "rendering": "Hafen, Kellerhaven",
            "keep": False} in as_json

    removed = cli_in_process(["glossary", "remove", "en", "de", "Mira Olsen"], env)
    assert removed.returncode == 0 and "removed 1 terms" in removed.stdout
    assert cli_in_process(["glossary", "remove", "en", "de"], env).returncode == 2  # neither terms nor --all
    assert cli_in_process(["glossary", "remove", "en", "de", "--all"], env).returncode == 0
    assert cli_in_process(["glossary", "list", "--target", "de"], env).stdout == ""
    assert cli_in_process(["glossary", "import", str(tmp_path / "missing.tsv")], env).returncode == 2


# --- the worker's view, on the toy models -------------------------------------------------------


@pytest.fixture(scope="module")
def engines_and_memory(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(FIXTURE_MODELS_DIR / "toy-en-qaa", root / "toy-en-qaa")  # extractive summaries
    memory = DictMemory()
    return ModelEngines.open(root, device="cpu", memory=memory), memory


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the store is covered on both above
def test_a_glossary_change_reaches_the_worker_and_never_serves_a_stale_sentence(store, engines_and_memory):
    engines, memory = engines_and_memory
    glossaries = StoreGlossaries(store, refresh_s=0)
    options = ProcessOptions(glossaries=glossaries)

    def translate(text: str) -> str:
        article = validate_article({"text": text, "lang": "en", "targets": ["qaa"]})
        return process(article, engines, options).summary["qaa"]

    sentence = "The national parliament met the minister today."
    unrelated = "The president visited the city."
    assert translate(sentence) == "Ta nacia parlo mitis ta ministo hodi."
    store.import_glossary([entry("national parliament", "Kellerhaven Dieto")])
    assert translate(sentence) == "Ta Kellerhaven Dieto mitis ta ministo hodi."
    assert translate(unrelated) == "Ta prezo vizitis ta sitra."

    calls = engines.load_stats()["toy-en-qaa"].batch_calls
    store.import_glossary([entry("national parliament", "Dieto Nova"), entry("Zorblatt", None)])
    assert translate(sentence) == "Ta Dieto Nova mitis ta ministo hodi."  # not the remembered one
    assert engines.load_stats()["toy-en-qaa"].batch_calls == calls + 1
    assert translate(unrelated) == "Ta prezo vizitis ta sitra."  # untouched by the change: from memory
    assert engines.load_stats()["toy-en-qaa"].batch_calls == calls + 1

    store.remove_glossary("en", "qaa")
    assert translate(sentence) == "Ta nacia parlo mitis ta ministo hodi."


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_worker_view_refreshes_at_most_every_refresh_interval(store):
    glossaries = StoreGlossaries(store, refresh_s=3600)
    assert glossaries.get("en", "qaa") is None
    store.import_glossary([entry("Mira Olsen", None)])
    assert glossaries.get("en", "qaa") is None  # not asked again yet
    glossaries.refresh_s = 0
    found = glossaries.get("en", "qaa")
    assert found is not None and found.keep == ("Mira Olsen",) and found.version == "en-qaa@1"
    assert glossaries.get("en", "qaa") is found  # unchanged version: not rebuilt


# --- the API and the review page --------------------------------------------------------------

from tests.api_server import ApiServerFactory, api_servers  # noqa: E402,F401  (fixture)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_api_and_review_page_show_failed_checks(service_env: dict[str, str], api_servers: ApiServerFactory) -> None:
    store = Store(service_env["BABELWIRE_DATABASE_URL"])
    store.migrate()
    article = validate_article({"id": "chk-1", "title": "Exports rose 6.5%", "text": "Exports rose. It is news.",
                                "lang": "en", "targets": ["de"]})
    [submission] = store.submit([article], "live")
    start = store.start_job(article, submission.job_id, "live", 3)
    checks = {"de": {"checked": {"number": 1, "term": 0, "keep": 0, "sentences": 2},
                     "failed": [{"check": "number", "part": "title", "sentence": 0, "expected": "6.5"}]}}
    store.finish_job(start.job_id, Result(
        article_id=article.key, external_id="chk-1", status="done", source_lang="en",
        title={"en": "Exports rose 6.5%", "de": "Exporte stiegen"}, summary={"en": "Exports rose.", "de": "Exporte."},
        checks=checks))
    store.close()
    server = api_servers.start(service_env)
    with server.client() as client:
        assert client.get(f"/v1/articles/{article.key}").json()["job"]["result"]["checks"] == checks
        page = client.get(f"/articles/{article.key}").text
    assert 'data-checks="de"' in page and "<b>number</b> · title, sentence 1: 6.5" in page
