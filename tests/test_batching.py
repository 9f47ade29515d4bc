"""Cross-article batching (pipeline/batching.py) on the real toy CTranslate2 models: threads
that each process one article share model calls, and each still gets exactly its own result."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import pytest

from models.engines import ModelEngines
from pipeline.article import Limits, validate_article
from pipeline.batching import ArticleBatcher, BatchOptions
from pipeline.process import process
from tests.fixtures.build_models import EN_TO_QAA, EN_TO_QAB, FIXTURE_MODELS_DIR, expected_translation
from tests.test_process import toy_english


@pytest.fixture(scope="module")
def engines() -> ModelEngines:
    return ModelEngines.open(FIXTURE_MODELS_DIR, device="cpu")


def toy_articles(n: int, seed: int, text: str | None = None) -> list[Any]:
    out = []
    for i in range(n):
        sentences = toy_english(seed + i, 2 + i % 3)
        raw = {"id": f"b{seed}-{i}", "title": sentences[-1], "text": text or " ".join(sentences),
               "lang": "en", "targets": ["qaa", "qab"]}
        out.append(validate_article(raw, Limits()))
    return out


def calls(engines: ModelEngines, model: str) -> int:
    stats = engines.load_stats()
    return stats[model].batch_calls if model in stats else 0


def run_concurrently(batcher: ArticleBatcher, articles: Sequence[Any]) -> list[Any]:
    """One thread per article, all started together (the threads pool's tasks)."""
    start = threading.Barrier(len(articles))

    def one(article: Any) -> Any:
        start.wait()
        return batcher.process(article)

    with ThreadPoolExecutor(len(articles)) as pool:
        return list(pool.map(one, articles))


def test_concurrent_articles_share_model_calls_and_each_gets_its_own_result(engines: ModelEngines) -> None:
    articles = toy_articles(12, seed=400)
    alone = [process(a, engines) for a in articles]
    batcher = ArticleBatcher(engines, batch=BatchOptions(max_articles=12, window_s=2.0))
    before = calls(engines, "toy-en-qaa")

    results = run_concurrently(batcher, articles)

    assert [r.external_id for r in results] == [a.id for a in articles]
    for result, single in zip(results, alone):
        assert result.status == "done"
        assert result.summary == single.summary and result.title == single.title
        assert result.summary["qab"] == expected_translation(result.summary["en"], EN_TO_QAB)
        assert result.title["qaa"] == expected_translation(result.title["en"], EN_TO_QAA)
    # the twelve arrived within the window: one batch, one en→qaa call for all of them
    assert (batcher.stats.batches, batcher.stats.largest) == (1, 12)
    assert calls(engines, "toy-en-qaa") - before == 1


def test_batches_are_capped_and_every_caller_is_answered(engines: ModelEngines) -> None:
    articles = toy_articles(10, seed=500)
    alone = [process(a, engines) for a in articles]
    batcher = ArticleBatcher(engines, batch=BatchOptions(max_articles=4, window_s=0.5))
    results = run_concurrently(batcher, articles)
    assert [r.external_id for r in results] == [a.id for a in articles]
    # (one of these toy articles is all "chrome" to the cleaner: failed, alone or batched)
    assert [(r.status, r.summary, r.errors) for r in results] == [(r.status, r.summary, r.errors) for r in alone]
    assert batcher.stats.largest <= 4 and batcher.stats.articles == 10 and batcher.stats.batches >= 3


def test_a_lone_article_waits_only_for_the_window(engines: ModelEngines) -> None:
    (article,) = toy_articles(1, seed=600)
    batcher = ArticleBatcher(engines, batch=BatchOptions(max_articles=8, window_s=0.05))
    started = time.monotonic()
    result = batcher.process(article)
    assert result.status == "done" and batcher.stats.batches == 1
    assert time.monotonic() - started < 30  # answered, not left waiting for company


def test_without_batching_it_is_a_plain_process_call(engines: ModelEngines) -> None:
    (article,) = toy_articles(1, seed=700)
    batcher = ArticleBatcher(engines)  # max_articles=1
    assert batcher.process(article).summary == process(article, engines).summary
    assert batcher.stats.batches == 0


class InjectedCrash(BaseException):
    pass


class SummarizerFailingOn:
    """Fault injection: the real summarizer, except that a batch holding a text with `marker`
    raises, as an input that breaks a model would (it takes the whole call down)."""

    def __init__(self, summarizer: Any, marker: str) -> None:
        self.summarizer, self.marker = summarizer, marker
        self.name, self.max_input_tokens = summarizer.name, summarizer.max_input_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.summarizer.count_tokens(texts)

    def summarize_batch(self, texts: Sequence[str], max_tokens: int) -> list[str]:
        if any(self.marker in text for text in texts):
            raise RuntimeError("injected fault")
        return self.summarizer.summarize_batch(texts, max_tokens)


class EnginesWith:
    """The real engines with a fault injected: in the summarizer, or (`crash`) in a place
    the pipeline does not guard, so that it escapes the batch."""

    def __init__(self, engines: ModelEngines, marker: str, crash: bool = False) -> None:
        self.engines, self.marker, self.crash = engines, marker, crash

    def summarizer(self, lang: str) -> Any:
        found = self.engines.summarizer(lang)
        return SummarizerFailingOn(found, self.marker) if found else None

    def translation(self, source: str, target: str) -> Any:
        return self.engines.translation(source, target)

    def translate(self, jobs: Any) -> Any:
        if self.crash:
            raise InjectedCrash()  # a BaseException: the pipeline's per-article guards let it through
        return self.engines.translate(jobs)


def process_each_in_a_thread(batcher: ArticleBatcher, articles: Sequence[Any]) -> tuple[dict[str, Any], list[BaseException]]:
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def one(article: Any) -> None:
        try:
            results[article.id] = batcher.process(article)
        except BaseException as exc:  # noqa: BLE001 - what the caller sees
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(a,)) for a in articles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a caller was left waiting"
    return results, errors


def test_an_article_that_breaks_the_summarizer_costs_only_its_own_summary(engines: ModelEngines) -> None:
    good = toy_articles(5, seed=800)
    (bad,) = toy_articles(1, seed=900, text="The POISON pill was in the first sentence. Another one follows it.")
    articles = [*good[:2], bad, *good[2:]]
    batcher = ArticleBatcher(EnginesWith(engines, "POISON"), batch=BatchOptions(max_articles=6, window_s=2.0))

    results, errors = process_each_in_a_thread(batcher, articles)

    assert not errors and batcher.stats.largest == 6  # all in one batch
    for article in good:
        assert results[article.id].status == "done", results[article.id].errors
        assert results[article.id].models["summary"] == "toy-lead-en"
    assert results[bad.id].status == "partial"
    assert "extractive summary instead" in results[bad.id].errors["summary"]


def test_a_crash_that_escapes_the_batch_reaches_each_caller_as_it_would_alone(engines: ModelEngines) -> None:
    articles = toy_articles(4, seed=1000)
    batcher = ArticleBatcher(EnginesWith(engines, "-", crash=True), batch=BatchOptions(max_articles=4, window_s=2.0))
    results, errors = process_each_in_a_thread(batcher, articles)
    assert not results and len(errors) == 4  # nobody hangs, nobody gets another's result
    assert all(isinstance(e, InjectedCrash) for e in errors)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_articles"):
        BatchOptions(max_articles=0)
    with pytest.raises(ValueError, match="window_s"):
        BatchOptions(window_s=-1)
