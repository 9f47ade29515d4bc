"""Fidelity checks (pipeline/checks.py): what each check catches, and what the result carries."""

from __future__ import annotations

import json
import re
from typing import Sequence

import pytest

from pipeline.article import validate_article
from pipeline.checks import check_translation
from pipeline.process import ProcessOptions, process
from pipeline.protect import Glossaries, Glossary, ProtectedSentence, protect


def failed(sources: Sequence[str], targets: Sequence[str], *glossaries: Glossary) -> list[tuple]:
    checks = check_translation("summary", [protect(s, glossaries) for s in sources], targets)
    return [(f.check, f.sentence, f.expected) for f in checks.failures]


@pytest.mark.parametrize(
    "source, target",
    [
        ("Growth was 6.5% in 2024.", "Das Wachstum lag 2024 bei 6,5 %."),
        ("It cost €1,250.", "Es kostete 1.250 €."),
        ("It cost €1,250.", "Cela a coûté 1 250 €."),
        ("It cost €1,250.", "Cela a coûté 1\u202f250 €."),
        ("Es kostete 1.250,50 €.", "It cost €1,250.50."),
        ("Es waren 6,5 Prozent.", "It was 6.5 percent."),
    ],
)
def test_numbers_match_across_locales(source, target):
    assert failed([source], [target]) == []


def test_a_changed_or_missing_number_fails_and_is_named():
    assert failed(["Growth was 6.5% in 2024.", "It cost €1,250."], ["Growth was 65% in 2024.", "It cost much."]) == [
        ("number", 0, "6.5"), ("number", 1, "1,250"),
    ]
    # a number that moved to the neighbouring sentence (the model merged or split) is still there
    assert failed(["The deal closed.", "It was worth 40 million."], ["The 40 million deal closed.", "It was big."]) == []


def test_terms_rendering_and_kept_names():
    glossary = Glossary.of(keep=["Mira Olsen"], render={"Kellerhaven Port": "Hafen Kellerhaven"})
    sources = ["Mira Olsen opened Kellerhaven Port."]
    assert failed(sources, ["Mira Olsen eröffnete den Hafen Kellerhaven."], glossary) == []
    assert failed(sources, ["Mira Olson eröffnete Kellerhavens Hafen."], glossary) == [
        ("keep", 0, "Mira Olsen"), ("term", 0, "Hafen Kellerhaven"),
    ]


def test_untranslated_duplicated_and_missing_sentences():
    sources = ["The minister met the press today.", "Talks will resume next week.", "Mira Olsen.", "Prices rose."]
    targets = ["The minister met the press today.", "Der Minister traf heute die Presse.", "Mira Olsen."]
    # sentence 2 is a name only: it may stay as it is; sentence 3 never came back
    assert failed(sources, targets) == [("untranslated", 0, sources[0]), ("missing", 3, sources[3])]
    result = failed(sources, ["The minister met the press today.", "The minister met the press today.", "Mira Olsen.", ""])
    assert result == [("untranslated", 0, sources[0]), ("duplicated", 1, sources[1]), ("missing", 3, sources[3])]
    assert failed(sources, targets[:2])[-2:] == [("missing", 2, sources[2]), ("missing", 3, sources[3])]


# --- through the pipeline, with a stub engine that drops digits ----------------------------


class DigitDroppingEngines:
    """Translates by upper-casing and drops every digit: a model that loses numbers."""

    class Route:
        def __init__(self, source: str, target: str):
            self.source, self.target, self.name = source, target, f"drop-digits-{source}-{target}"

    def summarizer(self, lang):
        return None

    def translation(self, source, target):
        return self.Route(source, target)

    def translate(self, jobs):
        def text(sentence) -> str:
            return sentence.text if isinstance(sentence, ProtectedSentence) else sentence

        return [[re.sub(r"\d", "", text(s)).upper() for s in sentences] for _, sentences in jobs]


def test_a_translation_that_drops_a_number_gets_a_failed_number_check_naming_it():
    article = validate_article({
        "title": "Exports rose 6.5% in March",
        "text": "Exports rose 6.5% in March, the ministry said. They reached €1,250 million.",
        "lang": "en", "targets": ["de"],
    })
    result = process(article, DigitDroppingEngines(), ProcessOptions(protect=False))
    assert result.status == "done" and result.errors == {}  # a finding, not an error
    assert result.checks["de"]["failed"] == [
        {"check": "number", "part": "summary", "sentence": 0, "expected": "6.5"},
        {"check": "number", "part": "summary", "sentence": 1, "expected": "1,250"},
        {"check": "number", "part": "title", "sentence": 0, "expected": "6.5"},
    ]
    assert result.checks["de"]["checked"]["number"] == 3
    # the JSON output carries it
    assert json.loads(json.dumps(result.to_dict()))["checks"]["de"]["failed"][0]["expected"] == "6.5"


def test_checks_run_with_the_newsrooms_glossary():
    glossaries = Glossaries(((("en", "de"), Glossary.of(render={"ministry": "Ministerium"})),))
    article = validate_article({"text": "The ministry said so.", "lang": "en", "targets": ["de"]})
    result = process(article, DigitDroppingEngines(), ProcessOptions(glossaries=glossaries))
    assert result.checks["de"]["failed"] == [
        {"check": "term", "part": "summary", "sentence": 0, "expected": "Ministerium"},
    ]


def test_failed_checks_are_counted_by_check_and_language_pair_in_the_worker_metrics():
    from prometheus_client import CollectorRegistry

    from pipeline.checks import failure_counts
    from worker.metrics import WorkerMetrics, count_check_failures

    article = validate_article({"title": "Exports rose 6.5%", "text": "They reached €1,250 million.",
                                "lang": "en", "targets": ["de", "fr"]})
    result = process(article, DigitDroppingEngines(), ProcessOptions(protect=False))
    counts = failure_counts(result.checks, result.source_lang)
    assert counts == {"en-de": {"number": 2}, "en-fr": {"number": 2}}

    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry)
    count_check_failures(metrics, counts)
    count_check_failures(metrics, {"en-de": {"term": 1}})
    count_check_failures(metrics, None)  # a task that returned no findings
    sample = registry.get_sample_value
    assert sample("babelwire_check_failures_total", {"check": "number", "pair": "en-de"}) == 2
    assert sample("babelwire_check_failures_total", {"check": "number", "pair": "en-fr"}) == 2
    assert sample("babelwire_check_failures_total", {"check": "term", "pair": "en-de"}) == 1
