"""Protected spans: the facts of a sentence that must come through translation unchanged.

Numbers, amounts, percentages, numeric dates and times, URLs, e-mail addresses, @handles,
#hashtags and the terms a glossary marks "keep" are found in each source sentence before
translation; glossary terms with a required rendering are found too. A `ProtectedSentence`
records where they are; the translation engine (models/translation.py) hides them from the
model in the way that model family copies best and puts them back afterwards — the
rendering in place of a glossary term, the source text for everything else (README,
"Fidelity").

Terms are matched case-sensitively on word boundaries (longest first, with an Aho-Corasick
automaton, so a 10,000-term glossary costs one pass over the sentence).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping, Protocol, Sequence, runtime_checkable

import ahocorasick

# Kinds of span, in the order they win when two overlap (terms before patterns).
TERM, KEEP = "term", "keep"
URL, EMAIL, HANDLE, HASHTAG = "url", "email", "handle", "hashtag"
DATETIME, AMOUNT, PERCENT, NUMBER = "datetime", "amount", "percent", "number"

_CURRENCY = r"[$€£¥₹₽₩₺₪₴฿¢]|(?:US|A|C|NZ|HK)\$"
_CURRENCY_CODE = r"(?:EUR|USD|GBP|JPY|CHF|CNY|INR|RUB|SEK|NOK|DKK|PLN|CZK|HUF|TRY|BRL|CAD|AUD)"
# 1,250 / 1.250 / 1 250 (space, no-break or thin space) / 6.5 / 6,5 / 1,250.75 / 12
NUMBER_PATTERN = (
    r"(?<![\w.,])[-+−]?(?:\d{1,3}(?:[,.\u00a0\u202f\u2009 ]\d{3})+(?![\d])(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?![\w])"
)
# an amount's number may follow its currency sign directly ("€1,250")
_AMOUNT_NUMBER = NUMBER_PATTERN.replace(r"(?<![\w.,])", "")
_PATTERNS: tuple[tuple[str, str], ...] = (
    (URL, r"\b(?:https?://|www\.)[^\s<>\"'«»]+[^\s<>\"'«».,;:!?)\]}]"),
    (EMAIL, r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    (HANDLE, r"(?<![\w@])@\w{1,50}"),
    (HASHTAG, r"(?<![\w#&])#\w*[^\W\d_]\w*"),
    (
        DATETIME,
        r"(?<![\w.,:/-])(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?"
        r"|\d{1,2}[./]\d{1,2}[./]\d{2,4}"
        r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?)(?![\w])",
    ),
    (
        AMOUNT,
        rf"(?:{_CURRENCY})\s?{_AMOUNT_NUMBER}"
        rf"|{NUMBER_PATTERN}\s?(?:{_CURRENCY}|{_CURRENCY_CODE}\b)",
    ),
    (PERCENT, rf"{NUMBER_PATTERN}\s?(?:%|‰)"),
    (NUMBER, NUMBER_PATTERN),
)
_SCANNER = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _PATTERNS))
_NUMBER = re.compile(NUMBER_PATTERN)


def normalize_sentence(sentence: str) -> str:
    """The form a sentence is protected, translated and remembered in: NFC, whitespace
    collapsed (sentences differing only in spacing or composition translate the same).
    Case is kept: "Apple" and "apple" are different sentences to the memory too."""
    return " ".join(unicodedata.normalize("NFC", sentence).split())


@dataclass(frozen=True)
class Span:
    """One protected stretch of a source sentence: `text` is what the source says, `output`
    what the translation must show (the same, or a glossary term's rendering)."""

    start: int
    end: int
    kind: str
    text: str
    output: str


@dataclass(frozen=True)
class ProtectedSentence:
    text: str
    spans: tuple[Span, ...] = ()

    def segments(self) -> list[str | Span]:
        """The sentence as plain text and spans in order (empty text left out)."""
        parts: list[str | Span] = []
        cursor = 0
        for span in self.spans:
            if span.start > cursor:
                parts.append(self.text[cursor : span.start])
            parts.append(span)
            cursor = span.end
        if cursor < len(self.text):
            parts.append(self.text[cursor:])
        return parts

    @property
    def memory_text(self) -> str:
        """What the translation memory keys this sentence on: the text and, when anything is
        protected, every span's kind and required output — so a glossary change that touches
        the sentence never serves its old translation, and one that does not, still hits."""
        if not self.spans:
            return self.text
        marks = "\x1e".join(f"{s.start}:{s.end}:{s.kind}:{s.output}" for s in self.spans)
        return f"{self.text}\x1f{marks}"

    def carried(self) -> "ProtectedSentence":
        """The spans as an intermediate leg of a pivot shows them: the source text, so the
        next leg can find and protect them again (a rendering belongs to the final target)."""
        return ProtectedSentence(self.text, tuple(
            Span(s.start, s.end, s.kind, s.text, s.text) for s in self.spans
        ))

    def relocate(self, translated: str) -> "ProtectedSentence":
        """The same spans found again in `translated` (the output of an intermediate leg, where
        each span's source text was put back): in order, else anywhere; one that cannot be
        found is dropped."""
        found: list[Span] = []
        taken: list[tuple[int, int]] = []
        cursor = 0
        for span in self.spans:
            start = translated.find(span.text, cursor)
            while start >= 0 and any(start < e and start + len(span.text) > s for s, e in taken):
                start = translated.find(span.text, start + 1)
            if start < 0:
                start = translated.find(span.text)
                if start < 0 or any(start < e and start + len(span.text) > s for s, e in taken):
                    continue
            end = start + len(span.text)
            found.append(Span(start, end, span.kind, span.text, span.output))
            taken.append((start, end))
            cursor = end
        return ProtectedSentence(translated, tuple(sorted(found, key=lambda s: s.start)))




@dataclass(frozen=True, eq=False)
class Glossary:
    """Terms of one direction: kept as is (names, brands, programme titles) or rendered as
    required. `version` names the glossary state it came from (for logs and listings)."""

    keep: tuple[str, ...] = ()
    render: tuple[tuple[str, str], ...] = ()
    version: str = ""

    @classmethod
    def of(cls, keep: Iterable[str] = (), render: Mapping[str, str] | None = None, version: str = "") -> "Glossary":
        return cls(tuple(keep), tuple((render or {}).items()), version)

    def __len__(self) -> int:
        return len(self.keep) + len(self.render)

    @cached_property
    def _automaton(self) -> "ahocorasick.Automaton | None":
        terms: dict[str, tuple[str, str]] = {}
        for term, rendering in self.render:
            term = _collapse(term)
            if term:
                terms[term] = (TERM, _collapse(rendering))
        for term in self.keep:  # keep wins over a rendering of the same term
            term = _collapse(term)
            if term:
                terms[term] = (KEEP, term)
        if not terms:
            return None
        automaton = ahocorasick.Automaton()
        for term, (kind, output) in terms.items():
            automaton.add_word(term, (len(term), kind, output))
        automaton.make_automaton()
        return automaton

    def matches(self, sentence: str) -> list[Span]:
        """Whole-word occurrences of the terms, leftmost-longest, not overlapping."""
        automaton = self._automaton
        if automaton is None:
            return []
        found = []
        for end_index, (length, kind, output) in automaton.iter(sentence):
            start, end = end_index - length + 1, end_index + 1
            if _word_edge(sentence, start, end):
                found.append(Span(start, end, kind, sentence[start:end], output))
        found.sort(key=lambda s: (s.start, -(s.end - s.start)))
        return _non_overlapping(found, [])


@runtime_checkable
class GlossarySource(Protocol):
    """Where the pipeline gets a direction's glossary: `Glossaries` (fixed), or the worker's
    view of the SQL store, which picks up changes while it runs."""

    def get(self, source: str, target: str) -> Glossary | None:
        """The glossary for source→target, or None."""


@dataclass(frozen=True, eq=False)
class Glossaries:
    """A newsroom's glossaries, one per direction: (source, target) -> `Glossary`."""

    pairs: tuple[tuple[tuple[str, str], Glossary], ...] = ()

    @cached_property
    def _by_pair(self) -> dict[tuple[str, str], Glossary]:
        return dict(self.pairs)

    def get(self, source: str, target: str) -> Glossary | None:
        return self._by_pair.get((source, target))


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _word_edge(text: str, start: int, end: int) -> bool:
    """A term starting or ending with a word character must not continue a word there."""
    before = start > 0 and text[start - 1].isalnum() and text[start].isalnum()
    after = end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    return not (before or after)


def _non_overlapping(candidates: Sequence[Span], taken: Sequence[Span]) -> list[Span]:
    kept = list(taken)
    for span in candidates:
        if all(span.end <= t.start or span.start >= t.end for t in kept):
            kept.append(span)
    return [s for s in kept if s not in taken]


def pattern_spans(sentence: str) -> list[Span]:
    """Numbers, amounts, percentages, dates and times, URLs, e-mails, handles, hashtags."""
    spans = []
    for match in _SCANNER.finditer(sentence):
        kind = match.lastgroup or NUMBER
        spans.append(Span(match.start(), match.end(), kind, match.group(), match.group()))
    return spans


def protect(sentence: str, glossaries: Sequence[Glossary] = ()) -> ProtectedSentence:
    """Find what must survive translation in `sentence` (normalized first); earlier
    glossaries win overlaps (an article's own terms before the newsroom's)."""
    sentence = normalize_sentence(sentence)
    spans: list[Span] = []
    for glossary in glossaries:
        spans += _non_overlapping(glossary.matches(sentence), spans)
    spans += _non_overlapping(pattern_spans(sentence), spans)
    return ProtectedSentence(sentence, tuple(sorted(spans, key=lambda s: s.start)))


# --- numbers, locale-aware ---------------------------------------------------------------


def number_strings(text: str) -> list[str]:
    """Every number written in `text` (as written: "1,250", "6,5", "1 250")."""
    return [m.group() for m in _NUMBER.finditer(text)]


def number_values(number: str) -> frozenset[str]:
    """The values a written number can mean, as canonical decimal strings: "1,250" is 1250
    (English grouping) or 1.25 (German decimal comma); "1.250,5" is 1250.5; "6,5" is 6.5."""
    sign = "-" if number[:1] in "-−" else ""
    body = number.lstrip("+-−")
    body = re.sub(r"[\u00a0\u202f\u2009 ]", "", body)  # spaces only ever group digits
    seps = [c for c in body if c in ".,"]
    readings: list[str] = []
    if not seps:
        readings.append(body)
    elif len(set(seps)) == 2:  # both: the last one is the decimal mark
        mark = seps[-1]
        whole, _, fraction = body.rpartition(mark)
        readings.append(whole.replace("," if mark == "." else ".", "") + "." + fraction)
    elif len(seps) > 1:  # one mark, repeated: grouping
        readings.append(body.replace(seps[0], ""))
    else:
        whole, _, fraction = body.partition(seps[0])
        readings.append(whole + "." + fraction)
        if len(fraction) == 3:  # "1,250" / "1.250": a thousands separator as well
            readings.append(whole + fraction)
    return frozenset(sign + _canonical(r) for r in readings)


def _canonical(number: str) -> str:
    whole, _, fraction = number.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


# --- case -------------------------------------------------------------------------------

_WORD = re.compile(r"\w+(?:[-'’]\w+)*")


def keep_case(source: str, translated: str) -> str:
    """Names and acronyms of the source keep their case in the translation: a word written
    capitalised (not as the sentence's first word) or in capitals in the source, found in the
    translation in another case ("apple" for "Apple", "Nato" for "NATO"), is written as the
    source has it."""
    words = list(_WORD.finditer(source))
    cased: dict[str, str] = {}
    for i, match in enumerate(words):
        word = match.group()
        acronym = len(word) > 1 and word.isupper()
        name = word[:1].isupper() and i > 0
        if acronym or name:
            cased.setdefault(word.casefold(), word)
    if not cased:
        return translated

    def fix(match: re.Match[str]) -> str:
        word = match.group()
        wanted = cased.get(word.casefold())
        return wanted if wanted is not None and wanted != word else word

    return _WORD.sub(fix, translated)


__all__ = [
    "AMOUNT", "DATETIME", "EMAIL", "HANDLE", "HASHTAG", "KEEP", "NUMBER", "PERCENT", "TERM", "URL",
    "Glossaries", "Glossary", "GlossarySource", "ProtectedSentence", "Span", "keep_case", "normalize_sentence", "number_strings", "number_values",
    "pattern_spans", "protect",
]
