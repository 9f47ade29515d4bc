"""Extractive summaries: TF-IDF centrality with a lead prior; any language; deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.extractive import rank_sentences

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "fixtures" / "pages"


def sentences_of(name: str) -> tuple[list[str], str]:
    expected = json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))
    return expected["sentences"], expected["lang"]


@pytest.mark.parametrize("name", ["en", "fr", "de", "es", "vi"])
def test_summary_is_an_ordered_subset_led_by_the_lead(name):
    sentences, lang = sentences_of(name)
    summary = rank_sentences(sentences, lang, 3)
    assert len(summary) == 3
    indexes = [sentences.index(s) for s in summary]
    assert indexes == sorted(indexes)
    assert summary[0] == sentences[0]  # a news story's lead is its best summary sentence


def test_deterministic():
    sentences, lang = sentences_of("en")
    assert all(rank_sentences(sentences, lang, 4) == rank_sentences(sentences, lang, 4) for _ in range(5))


def test_chinese_without_spaces():
    sentences = [
        "今天上午，北京市政府宣布将在明年扩建地铁网络。",
        "新的地铁线路将连接机场和市中心。",
        "市政府表示，地铁扩建将耗资五百亿元。",
        "一些市民对地铁票价上涨表示担忧。",
        "天气预报说明天有雨。",
    ]
    summary = rank_sentences(sentences, "zh", 2)
    assert len(summary) == 2 and summary[0] == sentences[0]
    assert "天气预报说明天有雨。" not in summary


def test_near_duplicates_are_not_both_picked():
    sentences = [
        "The port reopened on Monday after a week-long strike by dockworkers.",
        "The port reopened on Monday after a week-long strike by the dockworkers.",
        "Wages will rise by 6.5 percent this year under the deal agreed by the union.",
        "Shipping lines had diverted forty vessels to other ports during the strike.",
    ]
    summary = rank_sentences(sentences, "en", 2)
    assert sentences[0] in summary and sentences[1] not in summary


def test_limits():
    sentences = ["One sentence here.", "Another sentence there."]
    assert rank_sentences(sentences, "en", 5) == sentences
    assert rank_sentences(sentences, "en", 0) == []
    assert rank_sentences([], "en", 3) == []
    assert len(rank_sentences(sentences, "", 1)) == 1  # no language given
    with pytest.raises(ValueError):
        rank_sentences(sentences, "en", -1)


def test_long_article_is_fast_enough():
    import time

    sentences = [f"Sentence number {i} talks about topic {i % 17} and detail {i % 5}." for i in range(1500)]
    start = time.perf_counter()
    summary = rank_sentences(sentences, "en", 5)
    assert len(summary) == 5
    assert time.perf_counter() - start < 10
