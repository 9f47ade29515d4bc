"""Hypothesis strategies shared by tests/test_fuzz_*.py: any JSON value, and article-like
objects whose fields are sometimes right, sometimes at a limit, sometimes anything at all."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from pipeline.article import Limits

# Small limits, so that generated values cross them often (the checks are the same at any size).
LIMITS = Limits(max_text_chars=300, max_title_chars=60, max_targets=3, max_id_chars=20, max_url_chars=80,
                max_summary_sentences=5, max_summary_tokens=200, default_targets=("de",))

# text with the characters that break things downstream: NUL (PostgreSQL refuses it), other
# control characters, lone surrogates (not UTF-8), zero-width and bidi marks, line separators
AWKWARD_CHARS = "\x00\x01\x1b\x7f\u0085\u2028\u2029\u200b\u200f\ufeff\ud800\udfff\U0001f600"
texts = st.text(alphabet=st.characters(codec=None) | st.sampled_from(AWKWARD_CHARS), max_size=40)

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | texts)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

language_codes = st.sampled_from(
    ["en", "de", "fr", "vi", "qaa", "qab", "EN", "de-DE", "pt_BR", "zh-Hant", "deu", "xx", "", " ", "klingon",
     "../en", "de\x00", "12"]
)


def _long_text(limit: int) -> st.SearchStrategy[str]:
    """Strings around a limit: just under, at, just over."""
    return st.integers(min_value=limit - 1, max_value=limit + 1).map(lambda n: "w" * n)


known_codes = st.sampled_from(["en", "de", "fr", "vi", "qaa", "qab", "EN", "pt_BR", "zh-Hant"])

# every field of the schema with a value of the right type (strings with awkward characters)
valid_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": texts,
    "title": texts,
    "text": texts.map(lambda t: "Word " + t),
    "url": texts,
    "lang": known_codes,
    "targets": st.lists(known_codes, max_size=LIMITS.max_targets),
    "summary": st.fixed_dictionaries({}, optional={
        "max_sentences": st.integers(min_value=1, max_value=LIMITS.max_summary_sentences),
        "max_tokens": st.integers(min_value=8, max_value=LIMITS.max_summary_tokens),
    }),
}

# wrong values for one field: wrong types, limits crossed, unknown codes, anything
wrong_values: dict[str, st.SearchStrategy[Any]] = {
    "id": _long_text(LIMITS.max_id_chars) | json_values,
    "title": _long_text(LIMITS.max_title_chars) | json_values,
    "text": _long_text(LIMITS.max_text_chars) | st.sampled_from(["", "   ", "\x00", "\n\t"]) | json_values,
    "url": _long_text(LIMITS.max_url_chars) | json_values,
    "lang": language_codes | json_values,
    "targets": (st.lists(language_codes, max_size=5) | language_codes.map(lambda c: f"{c},de")
                | st.lists(known_codes, min_size=LIMITS.max_targets + 1, max_size=LIMITS.max_targets + 3)
                | json_values),
    "summary": st.fixed_dictionaries({}, optional={
        "max_sentences": st.integers(min_value=-2, max_value=8) | json_values,
        "max_tokens": st.integers(min_value=0, max_value=300) | json_values,
        "style": texts,
    }) | json_values,
    "model": texts,  # not in the schema: a message must not pick a model, nor a path
    "models_dir": texts,
}

valid_articles = st.fixed_dictionaries({"text": valid_fields["text"]},
                                       optional={k: v for k, v in valid_fields.items() if k != "text"})


@st.composite
def mutated_articles(draw: st.DrawFn) -> dict[str, Any]:
    """A valid article with one or two fields made wrong (or removed)."""
    article = draw(valid_articles)
    for name in draw(st.lists(st.sampled_from(sorted(wrong_values)), min_size=1, max_size=2, unique=True)):
        if name == "text" and draw(st.booleans()):
            article.pop("text")
        else:
            article[name] = draw(wrong_values[name])
    return article


articles = valid_articles | mutated_articles()
article_like = articles | json_values
