"""The one article schema every entry point validates against (docs/contracts.md, Article).

An article carries its body as `text` or as `html` (a CMS body fragment or a whole page),
never both; the size limit of each applies to what was sent. HTML is read later, by the
pipeline (pipeline/extract.py), so validating stays cheap.

Validation errors are `ArticleError`s that name the field, the limit and the value, so a
CLI line, an API request and a queued message all fail the same readable way.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.exceptions import ArticleError
from pipeline.languages import is_known, normalize_code


@dataclass(frozen=True)
class Limits:
    """Bounds on one article; configurable (worker settings build one)."""

    max_text_chars: int = 100_000
    max_html_chars: int = 2_000_000  # a whole page as sent: real news pages run to ~1.5 MB
    max_title_chars: int = 1_000
    max_targets: int = 20
    max_id_chars: int = 200
    max_url_chars: int = 2_000
    max_summary_sentences: int = 20
    max_summary_tokens: int = 1_024
    max_terms: int = 500  # kept terms and glossary entries of one article, all languages
    max_term_chars: int = 200
    default_targets: tuple[str, ...] = ()


class SummaryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sentences: int = Field(3, ge=1)
    max_tokens: int = Field(160, ge=8)


class Article(BaseModel):
    """A validated article. Build one with `validate_article`, which applies `Limits`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str | None = None
    title: str | None = None
    # One of the two: plain text, or HTML (a CMS body fragment or a whole page) that the
    # pipeline reads with the extractor (pipeline/extract.py).
    text: str | None = None
    html: str | None = None
    url: str | None = None
    # Where to POST the result (signed); called only if the operator's allowlist matches it
    # (worker/delivery). Not part of the key: it does not change the output.
    callback_url: str | None = None
    lang: str | None = None
    targets: tuple[str, ...] | None = None
    summary: SummaryOptions = SummaryOptions()
    # Terms translation must keep as written (names, brands, programme titles), and required
    # renderings per target language: {"de": {"Kellerhaven Port": "Hafen Kellerhaven"}}.
    keep: tuple[str, ...] = ()
    glossary: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("glossary")
    @classmethod
    def _glossary(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        merged: dict[str, dict[str, str]] = {}
        for code, terms in v.items():
            merged.setdefault(normalize_code(code), {}).update(terms)
        return merged

    @field_validator("lang")
    @classmethod
    def _lang(cls, v: str | None) -> str | None:
        return normalize_code(v) if v else None

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        seen: dict[str, None] = {}
        for code in v:
            seen.setdefault(normalize_code(code), None)
        return tuple(seen)

    # Computed once per (frozen) article: enqueue and the store ask for it several times.
    @cached_property
    def key(self) -> str:
        """Identity of the job (docs/architecture.md, step 2): normalized title and text plus output-changing options."""
        payload = {
            "title": _normalize_for_key(self.title or ""),
            "text": _normalize_for_key(self.text or ""),
            "lang": self.lang,
            "targets": sorted(self.targets or ()),
            "summary": self.summary.model_dump(),
        }
        if self.keep or self.glossary:  # only then, so every article without terms keeps its key
            payload["keep"], payload["glossary"] = sorted(self.keep), self.glossary
        if self.html is not None:  # only then, so every text article keeps its key
            payload["html"] = _normalize_for_key(self.html)
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> "Article":
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy.__dict__.pop("key", None)  # the cached key is the original's
        return copy


def _normalize_for_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _first_error(exc: ValidationError) -> ArticleError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "article"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ArticleError(loc, f"{err['msg']} (got {shown})")


def validate_article(data: Any, limits: Limits = Limits()) -> Article:
    """Validate raw input (a dict from JSON, CSV, the API or a message) into an Article.

    Raises ArticleError naming the field, the limit and the offending value.
    """
    if isinstance(data, Article):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise ArticleError("article", f"must be a JSON object (got {type(data).__name__})")
    for name, limit in (
        ("text", limits.max_text_chars),
        ("html", limits.max_html_chars),
        ("title", limits.max_title_chars),
        ("id", limits.max_id_chars),
        ("url", limits.max_url_chars),
        ("callback_url", limits.max_url_chars),
    ):
        value = data.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise ArticleError(name, f"at most {limit:,} characters (got {len(value):,})")
        if isinstance(value, str) and "\0" in value:  # PostgreSQL cannot store it in a text column
            position = value.index("\0")
            raise ArticleError(name, f"must not contain NUL characters (\\x00, first at position {position:,})")
    targets = data.get("targets")
    if isinstance(targets, str):  # "de,fr" from a CSV cell or a form
        data = {**data, "targets": [t for t in targets.split(",") if t.strip()]}
        targets = data["targets"]
    if isinstance(targets, list) and len(targets) > limits.max_targets:
        raise ArticleError("targets", f"at most {limits.max_targets} languages (got {len(targets)})")
    try:
        article = Article.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    if article.text and article.html:
        raise ArticleError("html", "give either text or html, not both (html is read into the text)")
    if not article.text and not article.html:
        field_name = "html" if article.html is not None else "text"
        raise ArticleError(field_name, "must not be empty (give the body as text, or the page as html)")
    if not article.text and article.text is not None:  # "" beside html: nothing to merge
        article = article.model_copy(update={"text": None})
    if not article.html and article.html is not None:
        article = article.model_copy(update={"html": None})
    if article.callback_url is not None and not article.callback_url.lower().startswith(("http://", "https://")):
        raise ArticleError("callback_url", f"must be an http(s) URL (got {article.callback_url[:80]!r})")
    if article.lang is not None and not is_known(article.lang):
        raise ArticleError("lang", f"unknown language code {article.lang!r} (use ISO 639-1, e.g. 'en')")
    targets_out = article.targets if article.targets is not None else limits.default_targets
    for code in targets_out:
        if not is_known(code):
            raise ArticleError("targets", f"unknown language code {code!r} (use ISO 639-1, e.g. 'de')")
    if len(targets_out) > limits.max_targets:
        raise ArticleError("targets", f"at most {limits.max_targets} languages (got {len(targets_out)})")
    _check_terms(article, limits)
    if article.summary.max_sentences > limits.max_summary_sentences:
        raise ArticleError(
            "summary.max_sentences",
            f"at most {limits.max_summary_sentences} (got {article.summary.max_sentences})",
        )
    if article.summary.max_tokens > limits.max_summary_tokens:
        raise ArticleError(
            "summary.max_tokens", f"at most {limits.max_summary_tokens} (got {article.summary.max_tokens})"
        )
    return article.model_copy(update={"targets": tuple(normalize_code(t) for t in targets_out)})


def _check_terms(article: Article, limits: Limits) -> None:
    """`keep` and `glossary`: known languages, non-empty terms within the length and count limits."""
    count = len(article.keep) + sum(len(terms) for terms in article.glossary.values())
    if count > limits.max_terms:
        field_name = "keep" if len(article.keep) > limits.max_terms else "glossary"
        raise ArticleError(field_name, f"at most {limits.max_terms} terms, keep and glossary together (got {count})")
    named: list[tuple[str, str]] = [(f"keep[{i}]", term) for i, term in enumerate(article.keep)]
    for code, terms in article.glossary.items():
        if not is_known(code):
            raise ArticleError(f"glossary.{code}", f"unknown language code {code!r} (use ISO 639-1, e.g. 'de')")
        for term, rendering in terms.items():
            named += [(f"glossary.{code}", term), (f"glossary.{code}.{term[:40]}", rendering)]
    for name, text in named:
        if not text.strip():
            raise ArticleError(name, "a term must not be empty")
        if len(text) > limits.max_term_chars:
            raise ArticleError(name, f"at most {limits.max_term_chars} characters (got {len(text):,})")
        if "\0" in text:
            raise ArticleError(name, "must not contain NUL characters (\\x00)")


def article_from_text(page: str, **fields: Any) -> dict[str, Any]:
    """A plain-text page: the first non-empty line is the title, the rest the text."""
    lines = page.splitlines()
    for i, line in enumerate(lines):
        if line.strip():
            return {"title": line.strip(), "text": "\n".join(lines[i + 1 :]).strip(), **fields}
    return {"title": None, "text": "", **fields}
