"""Sentences (language-aware) and chunks (token budget)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.article import article_from_text
from pipeline.clean import clean_article
from pipeline.segment import pack_chunks, split_paragraphs, split_sentences

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = sorted((ROOT / "tests" / "fixtures" / "pages").glob("*.expected.json"))


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("expected_path", EXPECTED, ids=lambda p: p.name.split(".")[0])
def test_pages_split_into_their_story_sentences(expected_path):
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    page = (ROOT / expected["page"]).resolve()  # every page is in the repository (tests/data)
    article = article_from_text(page.read_text(encoding="utf-8"))
    cleaned = clean_article(article["title"], article["text"])
    assert split_sentences(cleaned.text, expected["lang"]) == expected["sentences"]


@pytest.mark.parametrize(
    "lang,text,sentences",
    [
        # pysbd languages
        ("en", "Mr. Xi met Putin in Washington, D.C., on Monday. They talked.", 2),
        ("de", "Die Preise stiegen z. B. bei Brot. Am 3. März fiel der Zug aus.", 2),
        ("fr", "« Que faire ? » s’interroge M. Dupont. Il est parti.", 2),
        ("es", "El Sr. García llegó tarde. La Sra. Pérez no vino.", 2),  # pysbd cuts after "Sr."
        # rule-based: Vietnamese, Portuguese, unknown codes
        ("vi", "Ông Nguyễn V. An cho biết giá tăng. TP. Hồ Chí Minh có 3 chợ đầu mối.", 2),
        ("pt", "O Sr. Silva chegou. Ele falou por 10 minutos! Depois saiu.", 3),
        ("qaa", "one two three. four five six. Seven eight.", 2),
        ("", "First one. Second one.", 2),
        # full-width punctuation, quotes closing after the stop
        ("zh", "我们今天去了北京。天气很好！“他说：好。”然后走了。", 4),
        ("ja", "今日は晴れです。明日は雨でしょう！", 2),
    ],
)
def test_language_aware_splitting(lang, text, sentences):
    result = split_sentences(text, lang)
    assert len(result) == sentences, result
    assert squash("".join(result)) == squash(text)


def test_closing_quote_stays_with_its_sentence():
    assert split_sentences("“他说：好。”然后走了。", "zh") == ["“他说：好。”", "然后走了。"]


def test_paragraph_break_is_always_a_sentence_break():
    text = "A line with no full stop\n\nAnother one\nAnd a third."
    for lang in ("en", "vi", "zh"):
        assert split_sentences(text, lang) == ["A line with no full stop", "Another one", "And a third."]


def test_hard_wrap_is_not_a_paragraph_break():
    assert split_paragraphs("The council voted to\nbuild a tram.\nIt opens in 2027.") == [
        "The council voted to build a tram.",
        "It opens in 2027.",
    ]


def test_empty_text():
    assert split_sentences("", "en") == [] and split_sentences("\n\n  \n", "vi") == []


def test_segmenters_are_per_thread():
    text = "Mr. Smith went to Washington. He met the president. They talked for an hour."
    results: list[list[str]] = []

    def run():
        for _ in range(20):
            results.append(split_sentences(text, "en"))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == results[0] for r in results) and len(results[0]) == 3


_alphabet = st.sampled_from(list("abc XYZ.!?,“”«»。！？\nđĐ1"))


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=_alphabet, max_size=200),
    lang=st.sampled_from(["en", "de", "fr", "es", "vi", "zh", "qaa"]),
)
def test_splitting_loses_and_reorders_nothing(text, lang):
    sentences = split_sentences(text, lang)
    assert squash("".join(sentences)) == squash(text)
    assert all(s and s == s.strip() for s in sentences)


# --- chunks ------------------------------------------------------------------------------


class WordCounter:
    """A tokenizer stand-in: one token per word plus one end-of-sequence token; records calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return [len(t.split()) + 1 for t in texts]


def test_sentences_are_packed_in_order_within_budget():
    counter = WordCounter()
    sentences = ["one two three", "four five", "six", "seven eight nine ten", "eleven"]
    chunks = pack_chunks(sentences, counter, 7)
    assert chunks == [["one two three", "four five"], ["six", "seven eight nine ten"], ["eleven"]]
    assert counter.calls == [sentences]  # one call, all sentences


def test_a_sentence_is_split_only_when_it_alone_is_over_the_limit():
    counter = WordCounter()
    long = " ".join(f"w{i}" for i in range(20))  # 21 tokens
    chunks = pack_chunks(["short one", long, "tail"], counter, 8)
    assert chunks[0] == ["short one"]
    pieces = [p for chunk in chunks[1:] for p in chunk if p != "tail"]
    assert " ".join(pieces) == long  # split at word boundaries, nothing lost, in order
    for chunk in chunks:
        assert sum(len(s.split()) + 1 for s in chunk) <= 8
    assert len(counter.calls) >= 2 and counter.calls[0] == ["short one", long, "tail"]
    assert all(p in counter.calls[1] or any(p in c for c in counter.calls[1:]) for p in pieces)  # pieces re-counted


def test_a_word_over_the_limit_is_cut_into_characters():
    chunks = pack_chunks(["abcdefghij"], lambda texts: [len(t) for t in texts], 3)
    assert chunks == [["abc"], ["def"], ["ghi"], ["j"]]


def test_text_without_spaces_is_cut_into_characters():
    sentence = "我们今天去了北京天气很好"
    chunks = pack_chunks([sentence], lambda texts: [len(t) for t in texts], 5)
    assert "".join(p for chunk in chunks for p in chunk) == sentence
    assert all(sum(len(p) for p in chunk) <= 5 for chunk in chunks)


def test_a_single_character_over_the_limit_is_kept_whole():
    assert pack_chunks(["x"], lambda texts: [10 for _ in texts], 3) == [["x"]]


def test_no_sentences_no_call():
    def never(texts):
        raise AssertionError("count_tokens called for nothing")

    assert pack_chunks([], never, 10) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_tokens"):
        pack_chunks(["a"], lambda t: [1], 0)
    with pytest.raises(ValueError, match="counts for"):
        pack_chunks(["a", "b"], lambda t: [1], 10)


@settings(max_examples=100, deadline=None)
@given(
    sentences=st.lists(
        st.lists(st.text(alphabet="abcdef", min_size=1, max_size=6), min_size=1, max_size=30).map(" ".join),
        max_size=12,
    ),
    max_tokens=st.integers(min_value=2, max_value=12),
)
def test_chunks_fit_keep_order_and_lose_nothing(sentences, max_tokens):
    counter = WordCounter()
    chunks = pack_chunks(sentences, counter, max_tokens)
    assert all(chunks) and all(sum(len(s.split()) + 1 for s in chunk) <= max_tokens for chunk in chunks)
    flat = [piece for chunk in chunks for piece in chunk]
    assert " ".join(flat).split() == " ".join(sentences).split()
    # sentences that fit are never split
    fitting = [s for s in sentences if len(s.split()) + 1 <= max_tokens]
    assert all(s in flat for s in fitting)


# --- long paragraphs: pysbd reads them a window at a time ---------------------------------


def _news_paragraph(sentences: int) -> str:
    import random

    from benchmarks.common import news_sentence

    rng = random.Random(11)
    return " ".join(news_sentence(rng) for _ in range(sentences))


def test_a_long_paragraph_splits_as_it_did_whole(monkeypatch):
    """pysbd sees at most PYSBD_MAX_CHARS at once, cut at sentence breaks: on news text the
    sentences are the ones pysbd finds reading the whole paragraph."""
    from pipeline import segment

    paragraph = _news_paragraph(80)
    assert len(paragraph) > 5 * segment.PYSBD_MAX_CHARS
    windowed = {lang: split_sentences(paragraph, lang) for lang in ("en", "es", "de")}
    monkeypatch.setattr(segment, "PYSBD_MAX_CHARS", 10**9)
    for lang, sentences in windowed.items():
        assert sentences == split_sentences(paragraph, lang)
    assert len(windowed["en"]) == 80


def test_a_sentence_longer_than_a_window_stays_whole(monkeypatch):
    from pipeline import segment

    titles = "Mr. " * (segment.PYSBD_MAX_CHARS // 2)  # no sentence break in reach: cut at spaces
    no_space = "X" * (3 * segment.PYSBD_MAX_CHARS)  # nowhere to cut but inside the word
    text = f"{titles}Smith left. {no_space}. He came back."
    expected = [f"{titles}Smith left.", f"{no_space}.", "He came back."]
    assert split_sentences(text, "en") == expected
    monkeypatch.setattr(segment, "PYSBD_MAX_CHARS", 10**9)
    assert split_sentences(text, "en") == expected  # as pysbd reading it whole
