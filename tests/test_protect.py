"""Protected spans (pipeline/protect.py) through real CTranslate2 inference on the toy models.

The toy models translate word for word and copy unknown words; their tokenizer cuts every
punctuation character off, so "6.5%", "€1,250" and a URL come back as "6. 5 %", "€1, 250"
and "https : / / example. org / …" unless protected. A glossary rendering is something no
model can guess. So only the protection can keep these, and each test shows both sides.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import models.translation as translation
from models.engines import ModelEngines
from models.memory import DictMemory, memory_key, normalize_sentence
from pipeline.article import validate_article
from pipeline.process import ProcessOptions, process
from pipeline.protect import (
    AMOUNT,
    DATETIME,
    EMAIL,
    HANDLE,
    HASHTAG,
    KEEP,
    NUMBER,
    PERCENT,
    TERM,
    URL,
    Glossaries,
    Glossary,
    keep_case,
    number_values,
    protect,
)
from tests.fixtures.build_models import EN_TO_QAA, FIXTURE_MODELS_DIR, expected_translation

FACTS = ["Zorblatt Industries", "6.5%", "€1,250", "https://example.org/a/b"]
TERM_EN, TERM_QAA = "national parliament", "Kellerhaven Dieto"
GLOSSARIES = Glossaries(((("en", "qaa"), Glossary.of(render={TERM_EN: TERM_QAA})),))


# --- finding spans -----------------------------------------------------------------------


def kinds(sentence: str, *glossaries: Glossary) -> list[tuple[str, str]]:
    return [(span.kind, span.text) for span in protect(sentence, glossaries).spans]


def test_every_kind_of_fact_is_found():
    found = kinds(
        "Mail info@example.org or @zorb about #news at 14:30 on 2024-03-12 (or 12/03/2024): "
        "sales rose 6.5% to €1,250 and US$5, 1 250 people, 3,000 EUR, see https://example.org/a/b."
    )
    assert found == [
        (EMAIL, "info@example.org"),
        (HANDLE, "@zorb"),
        (HASHTAG, "#news"),
        (DATETIME, "14:30"),
        (DATETIME, "2024-03-12"),
        (DATETIME, "12/03/2024"),
        (PERCENT, "6.5%"),
        (AMOUNT, "€1,250"),
        (AMOUNT, "US$5"),
        (NUMBER, "1 250"),
        (AMOUNT, "3,000 EUR"),
        (URL, "https://example.org/a/b"),  # the full stop after it is the sentence's
    ]


def test_glossary_terms_match_whole_words_longest_first_and_win_over_patterns():
    glossary = Glossary.of(keep=["Mira Olsen", "G7"], render={"national parliament": "X", "parliament": "Y"})
    assert kinds("Mira Olsen told the national parliament and the parliament of G7 states.", glossary) == [
        (KEEP, "Mira Olsen"), (TERM, "national parliament"), (TERM, "parliament"), (KEEP, "G7"),
    ]
    assert kinds("Miranda Olsenova met the parliamentarians.", glossary) == []  # not inside words
    assert kinds("The G7 met.") == []  # a digit inside a word is no number
    assert kinds("The G7 met.", glossary) == [(KEEP, "G7")]


def test_an_articles_terms_win_over_the_newsrooms():
    article = Glossary.of(keep=["Kellerhaven Port"])
    newsroom = Glossary.of(render={"Kellerhaven Port": "Hafen Kellerhaven", "Port": "Hafen"})
    assert kinds("Kellerhaven Port opened.", article, newsroom) == [(KEEP, "Kellerhaven Port")]
    assert kinds("Kellerhaven Port opened.", newsroom, article) == [(TERM, "Kellerhaven Port")]


@pytest.mark.parametrize(
    "written, values",
    [
        ("6.5", {"6.5"}), ("6,5", {"6.5"}), ("1,250", {"1250", "1.25"}), ("1.250", {"1250", "1.25"}),
        ("1 250", {"1250"}), ("1\u202f250", {"1250"}), ("1,250.75", {"1250.75"}), ("1.250,75", {"1250.75"}),
        ("1,000,000", {"1000000"}), ("-3.50", {"-3.5"}), ("007", {"7"}),
    ],
)
def test_numbers_are_read_as_every_locale_may_mean_them(written, values):
    assert number_values(written) == values


def test_case_of_names_and_acronyms_is_kept():
    assert keep_case("Shares of Apple fell after NATO met.", "shares vu apple fell after Nato met.") == (
        "shares vu Apple fell after NATO met."
    )
    # the first word of a sentence is capitalised for grammar, not because it is a name
    assert keep_case("Apples fell.", "apples fell.") == "apples fell."


def test_memory_keys_keep_case_and_cover_the_protection():
    assert normalize_sentence("  Apple  met\u00a0NATO ") == "Apple met NATO"
    assert memory_key("m", "en", "qaa", "Apple met.") != memory_key("m", "en", "qaa", "apple met.")
    sentence = "The national parliament met."
    plain = protect(sentence)
    with_term = protect(sentence, [Glossary.of(render={TERM_EN: TERM_QAA})])
    other_rendering = protect(sentence, [Glossary.of(render={TERM_EN: "Other"})])
    keys = {memory_key("m", "en", "qaa", p.memory_text) for p in (plain, with_term, other_rendering)}
    assert len(keys) == 3  # a glossary change that touches the sentence never serves the old translation
    # ... and one that does not touch it still hits
    unrelated = protect(sentence, [Glossary.of(render={"court": "kurto"})])
    assert unrelated.memory_text == plain.memory_text


# --- through the toy models --------------------------------------------------------------


@pytest.fixture(scope="module")
def translator_only_store(tmp_path_factory) -> Path:
    """Only toy-en-qaa: the summary is extractive, so it holds the article's own sentences
    (the toy summarizer cuts at the first '.' token, which would cut "6.5%")."""
    store = tmp_path_factory.mktemp("store")
    shutil.copytree(FIXTURE_MODELS_DIR / "toy-en-qaa", store / "toy-en-qaa")
    return store


@pytest.fixture(scope="module")
def engines(translator_only_store) -> ModelEngines:
    return ModelEngines.open(translator_only_store, device="cpu")


TITLE = "Zorblatt Industries told the national parliament: 6.5% to €1,250 at https://example.org/a/b"
TEXT = (
    "The minister said Zorblatt Industries rose 6.5% to €1,250 today. "
    "The report is at https://example.org/a/b and the national parliament met the people. "
    "The president met the minister in the city."
)


def fact_article():
    return validate_article({"title": TITLE, "text": TEXT, "lang": "en", "targets": ["qaa"]})


@pytest.mark.parametrize("method", [translation.PLACEHOLDER, translation.ALIGNMENT])
def test_names_numbers_urls_and_terms_survive_with_protection_and_not_without(engines, monkeypatch, method):
    monkeypatch.setattr(translation, "protection_method", lambda model: method)
    protected = process(fact_article(), engines, ProcessOptions(glossaries=GLOSSARIES))
    unprotected = process(fact_article(), engines, ProcessOptions(glossaries=GLOSSARIES, protect=False))

    assert protected.status == unprotected.status == "done", (protected.errors, unprotected.errors)
    title, summary = protected.title["qaa"], protected.summary["qaa"]
    for fact in FACTS:
        assert fact in title and fact in summary, (fact, title, summary)
    assert TERM_QAA in title + summary and TERM_EN not in title + summary
    # every other word is the model's own word-for-word translation
    assert title == "Zorblatt Industries rakontis ta Kellerhaven Dieto: 6.5% tu €1,250 ak https://example.org/a/b"
    assert summary.startswith("Ta ministo dikis Zorblatt Industries rose 6.5% tu €1,250 hodi. Ta raporto is ak "
                              "https://example.org/a/b ko ta Kellerhaven Dieto mitis ta pipa.")
    assert protected.checks["qaa"]["failed"] == []
    assert protected.checks["qaa"]["checked"] == {"number": 4, "term": 2, "keep": 0, "sentences": 4}

    # without protection the tokenizer takes the facts apart, and the checks say so
    title, summary = unprotected.title["qaa"], unprotected.summary["qaa"]
    for fact in ["6.5%", "€1,250", "https://example.org/a/b"]:
        assert fact not in title + summary, fact
    assert "Zorblatt Industries" in summary  # unknown words are copied by the toy models anyway
    assert TERM_QAA not in title + summary and "nacia parlo" in title and "nacia parlo" in summary
    failed = {(f["check"], f["part"], f["sentence"], f["expected"]) for f in unprotected.checks["qaa"]["failed"]}
    assert failed == {
        ("number", "title", 0, "6.5"), ("number", "title", 0, "1,250"),
        ("number", "summary", 0, "6.5"), ("number", "summary", 0, "1,250"),
        ("term", "title", 0, TERM_QAA), ("term", "summary", 1, TERM_QAA),
    }
    assert unprotected.to_dict()["checks"] == unprotected.checks


def test_a_placeholder_the_model_loses_is_put_back_not_dropped(engines, monkeypatch):
    """A model that drops the placeholder: the span goes where the attention points (or,
    without it, before the final punctuation) — the fact is never lost silently."""
    model = engines.cache.get("toy-en-qaa")
    original = type(model).translate_batch_attention

    def losing(self, source, **options):
        results = original(self, source, **options)
        return [([t for t in hyp if not t.startswith("Qzx")], att) for hyp, att in results]

    monkeypatch.setattr(type(model), "translate_batch_attention", losing)
    route = engines.translation("en", "qaa")
    [out] = engines.translate([(route, [protect("The minister said prices rose 6.5% today.")])])
    assert "6.5%" in out[0]
    assert out[0].endswith(".") and out[0].startswith("Ta ministo dikis")


def test_pivot_routes_carry_spans_through_both_legs():
    engines = ModelEngines.open(FIXTURE_MODELS_DIR, device="cpu")
    route = engines.translation("qaa", "qab")
    assert route.name == "toy-qaa-en+toy-en-qab"
    glossary = Glossary.of(keep=["Mira Olsen"], render={"Ta parlo": "Kurul-Qab"})
    sentence = protect("Ta parlo mitis Mira Olsen ak 14:30, see https://example.org/a/b.", [glossary])
    [[out]] = engines.translate([(route, [sentence])])
    assert out == "Kurul-Qab tapasi Mira Olsen gu 14:30, see https://example.org/a/b."


def test_memory_serves_a_protected_sentence_and_keeps_renderings_apart(translator_only_store):
    memory = DictMemory()
    engines = ModelEngines.open(translator_only_store, device="cpu", memory=memory)
    route = engines.translation("en", "qaa")
    sentence = "The national parliament met at 14:30."
    first = engines.translate([(route, [protect(sentence, [Glossary.of(render={TERM_EN: "A"})])])])
    calls = engines.load_stats()["toy-en-qaa"].batch_calls
    again = engines.translate([(route, [protect(sentence, [Glossary.of(render={TERM_EN: "A"})])])])
    assert again == first == [["Ta A mitis ak 14:30."]]
    assert engines.load_stats()["toy-en-qaa"].batch_calls == calls  # from the memory
    changed = engines.translate([(route, [protect(sentence, [Glossary.of(render={TERM_EN: "B"})])])])
    assert changed == [["Ta B mitis ak 14:30."]]


def test_an_article_brings_its_own_kept_terms_and_renderings(engines):
    article = validate_article({
        "title": "The national parliament met Mira Olsen",
        "text": "The minister met Mira Olsen at the national parliament today.",
        "lang": "en", "targets": ["qaa"],
        "keep": ["Mira Olsen"], "glossary": {"qaa": {"national parliament": "Kellerhaven Dieto"}},
    })
    result = process(article, engines)
    assert result.title["qaa"] == "Ta Kellerhaven Dieto mitis Mira Olsen"
    assert result.summary["qaa"] == "Ta ministo mitis Mira Olsen ak ta Kellerhaven Dieto hodi."
    assert result.checks["qaa"]["checked"] == {"number": 0, "term": 2, "keep": 2, "sentences": 2}
    assert result.checks["qaa"]["failed"] == []
    # the article's terms are part of its identity: the same text without them is another job
    assert article.key != validate_article({**article.model_dump(), "keep": (), "glossary": {}}).key


def test_a_subword_model_gets_the_alignment_method_and_never_loses_a_span(tmp_path):
    """A random-weight Marian checkpoint with SentencePiece vocabularies (the OPUS-MT shape):
    its output is noise, so each span goes where the attention points or, failing that, before
    the final punctuation: it is never lost."""
    from tests.checkpoints import build_marian, convert_checkpoint
    from tests.models_core_helpers import install_marian

    checkpoint = build_marian(tmp_path / "hf", seed=3)
    install_marian(convert_checkpoint(checkpoint, tmp_path / "ct2"), checkpoint, tmp_path / "store", "mt-en-qaa",
                   pairs=[["en", "qaa"]])
    engines = ModelEngines.open(tmp_path / "store", device="cpu", compute_type="float32",
                                translate_options=translation.TranslateOptions(beam_size=1, max_decoding_length=24))
    assert translation.protection_method(engines.cache.get("mt-en-qaa")) == translation.ALIGNMENT
    glossary = Glossary.of(keep=["Zorblatt Industries"], render={TERM_EN: TERM_QAA})
    sentences = [protect(TEXT.split(". ")[0] + ".", [glossary]), protect(TITLE, [glossary]),
                 protect("Mail info@example.org at 14:30, or @zorb.")]
    outputs = engines.translate([(engines.translation("en", "qaa"), sentences)])[0]
    for sentence, out in zip(sentences, outputs):
        for span in sentence.spans:
            assert span.output in out, (span, out)
