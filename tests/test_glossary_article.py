"""An article's own terms ("keep", "glossary"): validated like every other field."""

from __future__ import annotations

import pytest

from pipeline.article import Limits, validate_article
from pipeline.exceptions import ArticleError


def test_terms_are_read_and_language_codes_normalized():
    article = validate_article({
        "text": "x", "keep": ["Mira Olsen"], "glossary": {"DE": {"Kellerhaven Port": "Hafen Kellerhaven"}},
    })
    assert article.keep == ("Mira Olsen",)
    assert article.glossary == {"de": {"Kellerhaven Port": "Hafen Kellerhaven"}}
    assert validate_article(article.model_dump()) == article  # a queued message reads back the same
    assert validate_article({"text": "x"}).key == validate_article({"text": "x", "keep": []}).key


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"keep": [""]}, "keep[0]", "must not be empty"),
        ({"keep": ["ok", "a" * 201]}, "keep[1]", "at most 200 characters (got 201)"),
        ({"keep": "Mira Olsen"}, "keep", "valid tuple"),
        ({"glossary": {"zz": {"a": "b"}}}, "glossary.zz", "unknown language code 'zz'"),
        ({"glossary": {"de": {"Port": ""}}}, "glossary.de.Port", "must not be empty"),
        ({"glossary": {"de": ["Port"]}}, "glossary.de", "valid dictionary"),
        ({"glossary": {"de": {"Port": 3}}}, "glossary.de.Port", "valid string"),
        ({"keep": ["t"] * 6}, "keep", "at most 5 terms"),
        ({"keep": ["t"] * 3, "glossary": {"de": {"a": "b", "c": "d", "e": "f"}}}, "glossary", "at most 5 terms"),
    ],
)
def test_bad_terms_are_refused_naming_the_field_and_the_limit(fields, field, message):
    with pytest.raises(ArticleError) as caught:
        validate_article({"text": "x", **fields}, Limits(max_terms=5))
    assert caught.value.field == field and message in caught.value.message, str(caught.value)
