"""The whole pipeline on real CTranslate2 toy models (tests/fixtures/models): exact outputs."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.engines import ModelEngines
from pipeline.article import validate_article
from pipeline.process import process, process_batch
from tests.fixtures.build_models import (
    EN_TO_QAA,
    EN_TO_QAB,
    FIXTURE_MODELS_DIR,
    expected_lead,
    expected_translation,
    toy_sentence,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "data" / "samples" / "seed-article.txt"  # a copy of the shared sample


@pytest.fixture(scope="module")
def engines() -> ModelEngines:
    # default compute type (int8 on CPU), as the worker and the CLI run the models
    return ModelEngines.open(FIXTURE_MODELS_DIR, device="cpu")


def toy_english(seed: int, sentences: int) -> list[str]:
    rng = random.Random(seed)
    return [toy_sentence(rng) for _ in range(sentences)]


def article(text: str, title: str, targets: list[str], **extra) -> object:
    return validate_article({"title": title, "text": text, "targets": targets, **extra})


def test_toy_article_is_summarized_and_translated_exactly(engines):
    sentences = toy_english(1, 3)
    title = toy_english(2, 1)[0]
    result = process(article(" ".join(sentences), title, ["qaa", "qab"], lang="en"), engines)

    assert result.status == "done", result.errors
    assert result.summary["en"] == sentences[0]  # the toy summarizer keeps the lead sentence
    assert result.summary["qaa"] == expected_translation(sentences[0], EN_TO_QAA)
    assert result.summary["qab"] == expected_translation(sentences[0], EN_TO_QAB)
    assert result.title == {
        "en": title,
        "qaa": expected_translation(title, EN_TO_QAA),
        "qab": expected_translation(title, EN_TO_QAB),
    }
    assert result.models == {"summary": "toy-lead-en", "qaa": "toy-en-qaa", "qab": "toy-en-qab"}
    assert set(result.timings_ms) >= {"clean", "detect", "segment", "summarize", "translate"}


def test_long_article_goes_map_reduce_over_several_chunks(engines):
    sentences = toy_english(3, 24)  # far over the toy summarizer's 64-token input limit
    summarizer = engines.summarizer("en")
    assert sum(summarizer.count_tokens(sentences)) > 3 * summarizer.max_input_tokens
    calls_before = engines.load_stats()["toy-lead-en"].batch_calls if "toy-lead-en" in engines.load_stats() else 0

    result = process(article(" ".join(sentences), "", ["qaa"], lang="en"), engines)

    # map: every chunk → its lead; reduce: the leads → the lead of the first chunk
    assert result.summary["en"] == sentences[0]
    assert result.summary["qaa"] == expected_translation(sentences[0], EN_TO_QAA)
    stats = engines.load_stats()["toy-lead-en"]
    assert stats.batch_calls - calls_before >= 2  # at least one map and one reduce round


def test_pivot_summarizes_and_translates_through_english(engines):
    """qaa has no summarizer and no direct qaa→qab model: both go through English."""
    sentences_en = toy_english(4, 3)
    title_en = toy_english(5, 1)[0]
    text_qaa = " ".join(expected_translation(s, EN_TO_QAA) for s in sentences_en)
    title_qaa = expected_translation(title_en, EN_TO_QAA)

    result = process(article(text_qaa, title_qaa, ["qab"], lang="qaa"), engines)

    assert result.status == "done", result.errors
    assert result.source_lang == "qaa"
    assert result.summary["en"] == sentences_en[0]
    assert result.summary["qab"] == expected_translation(sentences_en[0], EN_TO_QAB)
    assert result.summary["qaa"] == expected_translation(sentences_en[0], EN_TO_QAA)
    assert result.title["qab"] == expected_translation(title_en, EN_TO_QAB)
    assert result.models["summary_pivot"] == "toy-qaa-en"
    assert result.models["qab"] == "toy-en-qab"  # the summary is already English
    assert engines.translation("qaa", "qab").name == "toy-qaa-en+toy-en-qab"


def test_many_articles_in_one_batch_keep_their_own_sentences(engines):
    articles, expected = [], []
    for seed in range(12):
        sentences = toy_english(100 + seed, 2 + seed % 4)
        articles.append(article(" ".join(sentences), sentences[-1], ["qaa", "qab"], lang="en", id=f"a{seed}"))
        expected.append(sentences)
    stats = engines.load_stats()
    calls_before = stats["toy-en-qaa"].batch_calls if "toy-en-qaa" in stats else 0

    results = process_batch(articles, engines)

    for result, sentences in zip(results, expected):
        assert result.status == "done"
        assert result.summary["en"] == sentences[0]
        assert result.summary["qab"] == expected_translation(sentences[0], EN_TO_QAB)
        assert result.title["qaa"] == expected_translation(sentences[-1], EN_TO_QAA)
    assert [r.external_id for r in results] == [f"a{i}" for i in range(12)]
    # titles and summaries of all twelve articles bound for toy-en-qaa: one call
    assert engines.load_stats()["toy-en-qaa"].batch_calls - calls_before == 1


def test_translation_output_is_capped_relative_to_its_input(engines):
    from models.translation import TranslateOptions
    from tests.fixtures.build_models import split_words

    sentence = " ".join(toy_english(3, 3))  # three sentences' words in one input
    expected = expected_translation(sentence, EN_TO_QAA)
    ((full,),) = engines.translate([(engines.translation("en", "qaa"), [sentence])])
    assert full == expected  # the default cap (2 × input + 10) leaves a real translation whole

    tight = ModelEngines.open(FIXTURE_MODELS_DIR, device="cpu",
                              translate_options=TranslateOptions(max_length_ratio=0.25, max_length_slack=1))
    ((cut,),) = tight.translate([(tight.translation("en", "qaa"), [sentence])])
    words, expected_words = split_words(cut), split_words(expected)
    # input: the words plus </s>; at most a quarter of that, rounded up, plus 1 is decoded
    assert 0 < len(words) <= math.ceil((len(split_words(sentence)) + 1) / 4) + 1 < len(expected_words)
    assert words == expected_words[: len(words)]


def test_missing_target_is_partial_and_names_the_pull_command(engines):
    sentences = toy_english(6, 2)
    result = process(article(" ".join(sentences), "", ["qaa", "de"], lang="en"), engines)
    assert result.status == "partial"
    assert "en→de" in result.errors["de"]
    assert "babelwire models pull opus-mt-en-de" in result.errors["de"]
    assert result.summary["qaa"] == expected_translation(sentences[0], EN_TO_QAA)
    assert "de" not in result.summary


def test_without_models_the_summary_is_extractive(tmp_path):
    empty = ModelEngines.open(tmp_path, device="cpu")
    text = "The council approved the budget on Monday. Schools will get more money. " * 2
    result = process(article(text, "Budget approved", ["fr"], lang="en"), empty)
    assert result.status == "partial"
    assert result.models["summary"] == "extractive"
    assert result.summary["en"].startswith("The council approved the budget on Monday.")
    assert "babelwire models pull" in result.errors["fr"]


# --- CLI (docs/contracts.md, CLI) -------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def toy_env(monkeypatch):
    from worker.config import get_settings

    monkeypatch.setenv("BABELWIRE_MODELS_DIR", str(FIXTURE_MODELS_DIR))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def cli(*args: str, input: str | None = None):
    from worker.cli import app

    return runner.invoke(app, list(args), input=input)


def test_cli_process_seed_article_is_done_and_deterministic(toy_env):
    first = cli("process", str(SEED), "--to", "qaa", "--json")
    second = cli("process", str(SEED), "--to", "qaa", "--json")
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["status"] == "done" and a["source_lang"] == "en"
    assert a["summary"]["en"] and a["summary"]["qaa"] and a["title"]["qaa"]
    a.pop("timings_ms"), b.pop("timings_ms")
    assert a == b


def test_cli_partial_is_exit_0_with_the_error_reported(toy_env):
    result = cli("process", str(ROOT / "examples" / "article.txt"), "--to", "qaa,ja", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "partial" and "qaa" in out["summary"]
    assert "en→ja" in out["errors"]["ja"] and "babelwire models pull" in out["errors"]["ja"]


@pytest.mark.parametrize(
    "line, field, words",
    [
        ({"title": "t", "text": ""}, "text", "must not be empty"),
        ({"text": "x" * 100_001}, "text", "at most 100,000 characters"),
        ({"text": "Hello.", "targets": ["de", "xx"]}, "targets", "unknown language code 'xx'"),
        ({"text": "Hello.", "lang": "klingon"}, "lang", "unknown language code"),
        ({"text": "Hello.", "targets": ["de"] * 21}, "targets", "at most 20 languages"),
    ],
)
def test_cli_rejects_an_input_over_a_limit_with_field_and_limit(toy_env, tmp_path, line, field, words):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "A good article. It has two sentences.", "lang": "en", "targets": ["qaa"]}) + "\n" + json.dumps(line) + "\n")
    result = cli("process", str(path), "--json")
    assert result.exit_code == 1
    assert f"in.jsonl:2: {field}:" in result.stderr and words in result.stderr
    assert json.loads(result.stdout.splitlines()[0])["status"] == "done"  # the good line still ran


def test_cli_unknown_target_option_is_a_usage_error(toy_env):
    result = cli("process", str(ROOT / "examples" / "article.txt"), "--to", "de,zz")
    assert result.exit_code == 2 and "--to" in result.stderr and "'zz'" in result.stderr


def test_cli_process_reads_stdin(toy_env):
    result = cli("process", "-", "--to", "qaa", "--json", input="A title\n\nThe president met the minister.\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"]["qaa"] == "E title"  # "A" → "E", OOV "title" kept


def test_cli_clean_json(toy_env):
    result = cli("clean", str(SEED), "--json")
    out = json.loads(result.stdout)
    assert result.exit_code == 0 and out["lang"] == "en" and out["confidence"] > 0.9
    assert set(out) == {"title", "text", "lang", "confidence", "sentences", "headings", "metadata"}
    assert out["headings"] == ["US-China tension", "Russia ‘especially hopeful’"] and out["metadata"] == {}
    assert "Back to top" not in out["text"] and len(out["sentences"]) == len(set(out["sentences"]))
