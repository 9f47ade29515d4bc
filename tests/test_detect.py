"""Language detection: py3langid with normalized probabilities; an explicit lang wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import detect
from pipeline.article import article_from_text
from pipeline.clean import clean_article
from pipeline.detect import Detection, detect_language

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = sorted((ROOT / "tests" / "fixtures" / "pages").glob("*.expected.json"))


@pytest.mark.parametrize("expected_path", EXPECTED, ids=lambda p: p.name.split(".")[0])
def test_pages(expected_path):
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    page = (ROOT / expected["page"]).resolve()  # every page is in the repository (tests/data)
    article = article_from_text(page.read_text(encoding="utf-8"))
    detection = detect_language(clean_article(article["title"], article["text"]).text)
    assert detection.lang == expected["lang"]
    assert 0.9 < detection.confidence <= 1.0


@pytest.mark.parametrize(
    "text,lang",
    [
        ("Il governo ha approvato la riforma delle pensioni dopo un lungo dibattito in parlamento.", "it"),
        ("O governo aprovou a reforma da previdência depois de um longo debate no congresso.", "pt"),
        ("De regering heeft de hervorming van de pensioenen na een lang debat goedgekeurd.", "nl"),
        ("Правительство одобрило пенсионную реформу после долгих дебатов в парламенте.", "ru"),
        ("政府在议会经过长时间辩论后批准了养老金改革。", "zh"),
        ("政府は議会での長い議論の末、年金改革を承認した。", "ja"),
    ],
)
def test_iso_639_1_codes(text, lang):
    assert detect_language(text).lang == lang


def test_explicit_lang_wins():
    english = "The government approved the pension reform after a long debate in parliament."
    assert detect_language(english, hint="de") == Detection("de", 1.0)
    assert detect_language(english, hint="pt-BR") == Detection("pt", 1.0)
    assert detect_language(english, hint="") == detect_language(english)


@pytest.mark.parametrize("text", ["", "   \n", "12 345 – 67", "!!!"])
def test_no_letters_means_unknown(text):
    assert detect_language(text) == Detection("en", 0.0)


def test_short_text_is_less_certain_than_long_text():
    short = detect_language("Der Zug")
    long = detect_language("Der Zug nach Berlin fiel am Dienstagmorgen wegen einer Stellwerksstörung aus.")
    assert short.lang == long.lang == "de"
    assert 0.0 < short.confidence < long.confidence <= 1.0


def test_identifier_is_loaded_once():
    assert detect._get_identifier() is detect._get_identifier()
