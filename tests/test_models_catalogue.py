"""The model catalogue: its data, and which model it recommends for a language pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.catalogue import NLLB_LANGUAGE_CODES, Catalogue, pull_hint, summarizer_hint
from models.exceptions import CatalogueError
from models.manifest import FAMILIES, TASKS, validate_name
from pipeline.languages import KNOWN_CODES


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def test_catalogue_entries_are_well_formed(catalogue: Catalogue) -> None:
    assert len(catalogue.entries) >= 30
    for e in catalogue.entries:
        validate_name(e.name)
        assert e.task in TASKS and e.family in FAMILIES, e.name
        assert "/" in e.hub_id and e.size_mb > 0 and e.license, e.name
        assert e.revision == "main" or e.pinned, f"{e.name}: revision {e.revision!r}"
        codes = {c for pair in e.pairs for c in pair} | set(e.sources) | set(e.targets) | set(e.languages)
        assert codes and codes <= KNOWN_CODES, f"{e.name}: {sorted(codes - KNOWN_CODES)}"
        assert (e.task == "translation") == bool(e.translation_pairs()), e.name
    assert set(catalogue.defaults) <= set(catalogue.names())
    assert all(catalogue.get(n).commercial_use for n in catalogue.defaults)


def test_catalogue_has_the_models_newsrooms_need(catalogue: Catalogue) -> None:
    names = set(catalogue.names())
    for lang in ("de", "fr", "es", "it", "nl", "ru", "zh", "ar"):
        assert f"opus-mt-en-{lang}" in names and f"opus-mt-{lang}-en" in names, lang
    assert {"opus-mt-en-ROMANCE", "m2m100_418M", "nllb-200-distilled-600M", "distilbart-cnn-12-6",
            "pegasus-cnn_dailymail", "mT5_multilingual_XLSum"} <= names
    nllb = catalogue.get("nllb-200-distilled-600M")
    assert nllb.license == "cc-by-nc-4.0" and not nllb.commercial_use
    assert nllb.pull_command() == "babelwire models pull nllb-200-distilled-600M --accept-license"
    assert set(nllb.targets) == set(NLLB_LANGUAGE_CODES)
    romance = catalogue.get("opus-mt-en-ROMANCE")
    assert romance.target_selection == "source_token" and romance.language_tokens["fr"] == ">>fr<<"
    assert catalogue.get("distilbart-cnn-12-6").revision == "a4f8f3ea906ed274767e9906dbaede7531d660ff"


@pytest.mark.parametrize(
    "source, target, command",
    [
        ("en", "de", "babelwire models pull opus-mt-en-de"),          # a direct OPUS-MT pair
        ("de", "en", "babelwire models pull opus-mt-de-en"),
        ("en", "ja", "babelwire models pull opus-mt-en-jap"),          # OPUS-MT's name for it
        ("en", "pt", "babelwire models pull opus-mt-en-ROMANCE"),      # multi-target OPUS-MT
        ("pt", "en", "babelwire models pull opus-mt-ROMANCE-en"),
        ("de", "fr", "babelwire models pull m2m100_418M"),             # many-to-many, never NLLB
        ("sw", "yo", "babelwire models pull m2m100_418M"),
        ("EN", "de-AT", "babelwire models pull opus-mt-en-de"),        # codes are normalized
        ("en", "qaa", "babelwire models pull opus-mt-en-qaa"),         # nothing known: OPUS-MT's scheme
    ],
)
def test_pull_hint_recommends_the_best_catalogue_model(catalogue: Catalogue, source: str, target: str, command: str) -> None:
    assert pull_hint(source, target, catalogue) == command


def test_pull_hint_goes_through_english_when_no_model_serves_the_pair(tmp_path: Path) -> None:
    data = {"format": 1, "defaults": [], "models": [
        {"name": f"opus-mt-{s}-{t}", "hub_id": f"Helsinki-NLP/opus-mt-{s}-{t}", "revision": "main",
         "task": "translation", "family": "marian", "pairs": [[s, t]], "license": "apache-2.0", "size_mb": 300}
        for s, t in (("qaa", "en"), ("en", "qab"))]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    catalogue = Catalogue.load(tmp_path / "c.json")
    assert pull_hint("qaa", "qab", catalogue) == (
        "babelwire models pull opus-mt-qaa-en && babelwire models pull opus-mt-en-qab")


def test_summarizer_hint(catalogue: Catalogue) -> None:
    assert summarizer_hint("en", catalogue) == "babelwire models pull distilbart-cnn-12-6"
    # mT5-XLSum is non-commercial: other languages are summarized through English
    assert summarizer_hint("sw", catalogue) == "babelwire models pull distilbart-cnn-12-6"
    xlsum = catalogue.summarizer_for("sw", allow_noncommercial=True)
    assert xlsum is not None and xlsum.name == "mT5_multilingual_XLSum"


def test_broken_catalogues_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CatalogueError, match="cannot read"):
        Catalogue.load(tmp_path / "bad.json")
    (tmp_path / "dup.json").write_text(json.dumps({"models": [
        {"name": "a", "hub_id": "x/a", "revision": "main", "task": "translation", "family": "marian",
         "pairs": [["en", "de"]], "license": "mit", "size_mb": 1}] * 2}))
    with pytest.raises(CatalogueError, match="duplicate"):
        Catalogue.load(tmp_path / "dup.json")
    (tmp_path / "unknown.json").write_text(json.dumps({"models": [{"name": "a", "colour": "red"}]}))
    with pytest.raises(CatalogueError, match="unknown keys"):
        Catalogue.load(tmp_path / "unknown.json")
    with pytest.raises(CatalogueError, match="did you mean: opus-mt-en-de"):
        Catalogue.load().get("en-de")
