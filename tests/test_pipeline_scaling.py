"""Every text stage of the pipeline is linear (or n log n) in its input, hostile input included.

Two kinds of test:

* Hypothesis fuzzing of each stage on adversarial text (long runs of abbreviations and
  initials, numbered lists, text without spaces, runs of punctuation, newlines, mixed
  scripts) of up to 64,000 characters, with a per-example deadline. The deadline is a
  tripwire, not a speed claim: at 64,000 characters a linear stage takes about a second on a
  loaded two-core machine, while the quadratic splitter this replaced took 10 to 20 s.
* Deterministic work counts, no clocks: the same input at 1× and 8× the size, and the work
  a stage does (characters its regular expressions are asked to read, the squared size of
  what pysbd is handed, sentence pairs compared, characters sent to the tokenizer) must
  grow by less than 10× — a quadratic stage grows by 64×.

The speed itself is a benchmark figure (`python -m benchmarks --only segmentation_scaling`).
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from dataclasses import dataclass

import pysbd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models.engines import ModelEngines
from pipeline import detect, extractive, segment
from pipeline.article import validate_article
from pipeline.clean import clean_article
from pipeline.detect import detect_language
from pipeline.extractive import rank_sentences
from pipeline.process import process
from pipeline.segment import pack_chunks, split_sentences

BIG = 64_000
SIZES = [300, 4_000, BIG]
DEADLINE_MS = 5_000
FUZZ = settings(deadline=DEADLINE_MS, max_examples=20, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# What hostile or broken input repeats: titles and initials that suppress a break (each one
# made the old splitter re-read everything since the last break), numbered lists, runs with
# no space or no letter at all, line breaks, quotes and brackets, scripts without spaces.
UNITS = [
    "A. ", "U.S. ", "Mr. ", "Sr. ", "Dr. ", "e.g. ", "1. ", "No. 5 ", "Ông V. ", "x", "xyzzy",
    ".", "?!", "…", "...", "\n", "\n\n", " \n", "“", "(", "”. ", ")", "a@b", "http://a.b/",
    "Привет мир. ", "你好世界。", "“好。”", "สวัสดี", "\u200b", "\t",
    "The council met on Tuesday. ",
]
LANGS = ["en", "de", "es", "fr", "ru", "vi", "pt", "zh", "ja", "th", "qaa", ""]


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@dataclass(frozen=True)
class Hostile:
    """A text described in a line, so a failing example prints in a line, not in 64 kB."""

    units: tuple[str, ...]
    size: int
    runs: bool = True  # each unit in one long run, or the units interleaved

    @property
    def text(self) -> str:
        if self.runs:
            return "".join(repeat(unit, self.size // len(self.units) + 1) for unit in self.units)[: self.size]
        return repeat("".join(self.units), self.size)


hostile_texts = st.builds(
    Hostile,
    units=st.lists(st.sampled_from(UNITS), min_size=1, max_size=3).map(tuple),
    size=st.sampled_from(SIZES),
    runs=st.booleans(),
)
KNOWN_QUADRATIC = [(Hostile(("A. ",), BIG), "vi"), (Hostile(("U.S. ",), BIG), "en"), (Hostile(("Mr. ",), BIG), "en")]


# --- fuzzing under a deadline ------------------------------------------------------------


@FUZZ
@given(hostile=hostile_texts, lang=st.sampled_from(LANGS))
@example(*KNOWN_QUADRATIC[0])
@example(*KNOWN_QUADRATIC[1])
@example(*KNOWN_QUADRATIC[2])
@example(Hostile(("Sr. ",), BIG), "es")
def test_split_sentences_under_deadline(hostile, lang):
    text = hostile.text
    sentences = split_sentences(text, lang)
    assert "".join("".join(sentences).split()) == "".join(text.split())


@FUZZ
@given(hostile=hostile_texts, max_tokens=st.sampled_from([1, 3, 64, 512]))
@example(Hostile(("x",), BIG), 3)
def test_pack_chunks_under_deadline(hostile, max_tokens):
    text = hostile.text
    chunks = pack_chunks(split_sentences(text, "en"),
                         lambda texts: [len(t.split()) + len(t) // 8 + 1 for t in texts], max_tokens)
    assert "".join("".join(p for chunk in chunks for p in chunk).split()) == "".join(text.split())


@FUZZ
@given(hostile=hostile_texts, title=st.sampled_from(["", "Title", "U.S. " * 50]))
@example(Hostile(("x",), BIG), "Title")
@example(Hostile((".",), BIG), "Title")
def test_clean_article_under_deadline(hostile, title):
    clean_article(title, hostile.text)


@FUZZ
@given(hostile=hostile_texts)
def test_detect_language_under_deadline(hostile):
    detection = detect_language(hostile.text)
    assert 0.0 <= detection.confidence <= 1.0


@FUZZ
@given(hostile=hostile_texts, lang=st.sampled_from(LANGS))
@example(Hostile(("Ab. ",), BIG), "en")
def test_rank_sentences_under_deadline(hostile, lang):
    sentences = split_sentences(hostile.text, lang)
    summary = rank_sentences(sentences, lang, 3)
    assert len(summary) == min(3, len(sentences)) and all(s in sentences for s in summary)


@pytest.fixture(scope="module")
def no_models(tmp_path_factory) -> ModelEngines:
    """Real engines over an empty model store: no summarizer, no translation."""
    return ModelEngines.open(tmp_path_factory.mktemp("no-models"), device="cpu")


@FUZZ
@given(hostile=hostile_texts, lang=st.sampled_from(["en", "vi", "es", None]))
@example(*KNOWN_QUADRATIC[0])
@example(*KNOWN_QUADRATIC[1])
@example(Hostile(("x",), BIG), "en")
def test_process_without_models_under_deadline(no_models, hostile, lang):
    text = hostile.text
    if not text.strip():
        return
    result = process(validate_article({"text": text, "lang": lang, "targets": ["de"]}), no_models)
    assert result.status in {"partial", "failed"}
    assert result.status == "failed" or result.models["summary"] == "extractive"


# --- work counted, not timed -------------------------------------------------------------


class CountingPattern:
    """A compiled pattern that adds up how many characters it is asked to read: the span
    searched for search/finditer/findall/sub/split, the span matched for match/fullmatch."""

    def __init__(self, pattern: re.Pattern[str], tally: Counter[str]):
        self._pattern, self._tally = pattern, tally

    def _span(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> None:
        self._tally["regex_chars"] += max(0, min(endpos, len(string)) - pos)

    def search(self, string, pos=0, endpos=sys.maxsize):
        self._span(string, pos, endpos)
        return self._pattern.search(string, pos, endpos)

    def finditer(self, string, pos=0, endpos=sys.maxsize):
        self._span(string, pos, endpos)
        return self._pattern.finditer(string, pos, endpos)

    def findall(self, string, pos=0, endpos=sys.maxsize):
        self._span(string, pos, endpos)
        return self._pattern.findall(string, pos, endpos)

    def sub(self, repl, string, count=0):
        self._span(string)
        return self._pattern.sub(repl, string, count)

    def split(self, string, maxsplit=0):
        self._span(string)
        return self._pattern.split(string, maxsplit)

    def match(self, string, pos=0, endpos=sys.maxsize):
        m = self._pattern.match(string, pos, endpos)
        self._tally["regex_chars"] += (m.end() - pos if m else 0) + 1
        return m

    def fullmatch(self, string, pos=0, endpos=sys.maxsize):
        self._span(string, pos, endpos)
        return self._pattern.fullmatch(string, pos, endpos)

    def __getattr__(self, name):
        return getattr(self._pattern, name)


def splitting_work(monkeypatch, text: str, lang: str) -> Counter[str]:
    """Work `split_sentences` does: characters read by segment's regular expressions, and
    pysbd's input size squared (its rules are quadratic on some inputs, so what it is
    handed at once is what bounds it)."""
    tally: Counter[str] = Counter()
    with monkeypatch.context() as patch:
        for name, value in list(vars(segment).items()):
            if isinstance(value, re.Pattern):
                patch.setattr(segment, name, CountingPattern(value, tally))
        segment_text = pysbd.Segmenter.segment

        def counted(self, text):
            tally["pysbd_chars_squared"] += len(text) ** 2
            return segment_text(self, text)

        patch.setattr(pysbd.Segmenter, "segment", counted)
        split_sentences(text, lang)
    return tally


@pytest.mark.parametrize(
    "unit,lang",
    [
        ("A. ", "vi"), ("A. ", "en"), ("U.S. ", "en"), ("Mr. ", "en"), ("Mr. ", "vi"), ("Sr. ", "es"),
        ("1. ", "en"), ("e.g. ", "de"), ("The council met on Tuesday. ", "en"),
        ("The council met on Tuesday. ", "pt"), ("“好。”", "zh"), ("สวัสดี", "th"), ("... ", "fr"),
    ],
)
def test_splitting_work_grows_linearly(monkeypatch, unit, lang):
    small = splitting_work(monkeypatch, repeat(unit, 4_000), lang)
    large = splitting_work(monkeypatch, repeat(unit, 32_000), lang)
    for kind in ("regex_chars", "pysbd_chars_squared"):
        assert large[kind] <= 10 * max(small[kind], 1), (kind, small[kind], large[kind])


def test_ranking_compares_a_bounded_number_of_pairs(monkeypatch):
    sizes: list[int] = []
    lexrank = extractive._lexrank

    def counted(similarity):
        sizes.append(similarity.shape[0])
        return lexrank(similarity)

    monkeypatch.setattr(extractive, "_lexrank", counted)
    sentences = [f"Sentence {i} is about topic {i % 17} and detail {i % 5}." for i in range(3_200)]
    rank_sentences(sentences[:400], "en", 3)
    rank_sentences(sentences, "en", 3)
    small, large = sizes
    assert large**2 <= 10 * small**2, sizes  # pairs compared


@pytest.mark.parametrize("tokenizer", ["words", "stubborn"])
def test_chunking_work_grows_n_log_n(tokenizer):
    """Characters sent to the tokenizer. `stubborn` says every piece longer than one word is
    just over the limit, so each round only halves the pieces: the n log n worst case."""
    sent: Counter[str] = Counter()
    max_tokens = 8

    def count_tokens(texts):
        sent["chars"] += sum(map(len, texts))
        if tokenizer == "words":
            return [len(t.split()) + 1 for t in texts]
        return [max_tokens + 1 if " " in t else 1 for t in texts]

    def work(words: int) -> int:
        sent.clear()
        sentence = " ".join(f"w{i % 97}" for i in range(words))
        chunks = pack_chunks([sentence, "Short one.", sentence], count_tokens, max_tokens)
        assert " ".join(p for chunk in chunks for p in chunk).split() == f"{sentence} Short one. {sentence}".split()
        return sent["chars"]

    small, large = work(1_000), work(8_000)
    assert large <= 8 * small * math.log2(8 * 1_000) / math.log2(1_000) * 1.05, (small, large)


def test_language_identifier_reads_a_bounded_prefix(monkeypatch):
    identifier_class = type(detect._get_identifier())
    seen: list[int] = []
    classify = identifier_class.classify

    def counted(self, text):
        seen.append(len(text))
        return classify(self, text)

    monkeypatch.setattr(identifier_class, "classify", counted)
    for size in (4_000, 32_000, 256_000):
        detect_language(repeat("The council met on Tuesday. ", size))
    assert max(seen) <= detect.MAX_CHARS
