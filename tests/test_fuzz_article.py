"""Fuzzing the article schema (`validate_article`, the one schema every entry point uses):
every input is either an Article within the limits or an ArticleError that names the field;
nothing else is ever raised, and an accepted article keeps its identity through the JSON
message that carries it to the worker."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from pipeline.article import Article, validate_article
from pipeline.exceptions import ArticleError
from pipeline.languages import is_known
from tests.fuzz_strategies import LIMITS, article_like

SCHEMA_FIELDS = set(Article.model_fields)


def check(data: Any) -> Article | ArticleError:
    try:
        return validate_article(data, LIMITS)
    except ArticleError as exc:
        return exc


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article_like)
def test_every_input_is_an_article_within_the_limits_or_an_error_naming_the_field(data: Any) -> None:
    outcome = check(data)
    if isinstance(outcome, ArticleError):
        root = outcome.field.split(".")[0]
        allowed = SCHEMA_FIELDS | {"article"} | (set(data) if isinstance(data, dict) else set())
        assert root in allowed, outcome
        assert outcome.message and str(outcome) == f"{outcome.field}: {outcome.message}"
        assert len(str(outcome)) < 500  # a value is shown cut, never whole
        return
    article = outcome
    assert 0 < len(article.text) <= LIMITS.max_text_chars
    assert len(article.title or "") <= LIMITS.max_title_chars
    assert len(article.id or "") <= LIMITS.max_id_chars and len(article.url or "") <= LIMITS.max_url_chars
    for value in (article.text, article.title, article.id, article.url):
        assert "\x00" not in (value or ""), "NUL reached the store (PostgreSQL refuses it)"
    assert article.targets is not None and len(article.targets) <= LIMITS.max_targets
    assert all(is_known(code) for code in article.targets)
    assert article.lang is None or is_known(article.lang)
    assert 1 <= article.summary.max_sentences <= LIMITS.max_summary_sentences
    assert 8 <= article.summary.max_tokens <= LIMITS.max_summary_tokens
    # the same input is the same job, and so is the message the enqueuer sends for it
    assert check(data).key == article.key
    message = json.loads(json.dumps({"article": article.model_dump(mode="json", exclude_none=True)}))
    again = check(message["article"])
    assert isinstance(again, Article) and again.key == article.key and again == article
