"""Fidelity checks: is every fact of a source sentence in its translation?

For each translated title and summary, sentence by sentence:

  number        every number of the source is in the target, by value and locale-aware
                ("6.5" = "6,5"; "1,250" = "1.250" = "1 250")
  term          every glossary term is rendered as the glossary requires
  keep          every kept term (names, brands, titles) is there as written
  untranslated  no sentence comes back as its source (when it has words to translate)
  duplicated    no sentence comes back as a copy of another sentence's translation
  missing       no sentence comes back empty or not at all

A failed check is a finding for an editor, not an error: it never changes a result's status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pipeline.protect import KEEP, TERM, ProtectedSentence, number_strings, number_values

NUMBER, UNTRANSLATED, DUPLICATED, MISSING = "number", "untranslated", "duplicated", "missing"
SENTENCES = "sentences"
KINDS = (NUMBER, TERM, KEEP, UNTRANSLATED, DUPLICATED, MISSING)
# a sentence with fewer words to translate than this may come back as it is (a name, a dateline)
UNTRANSLATED_MIN_WORDS = 3
_WORDS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class CheckFailure:
    check: str  # one of KINDS
    part: str  # "title" | "summary"
    sentence: int  # 0-based index among the part's sentences
    expected: str  # the number, rendering, term or source sentence that is not there

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "part": self.part, "sentence": self.sentence, "expected": self.expected}


@dataclass(frozen=True)
class Checks:
    """What was checked (how many of each kind) and what failed, for one target language."""

    checked: tuple[tuple[str, int], ...] = ()
    failures: tuple[CheckFailure, ...] = ()

    def __add__(self, other: "Checks") -> "Checks":
        counts = dict(self.checked)
        for kind, count in other.checked:
            counts[kind] = counts.get(kind, 0) + count
        return Checks(tuple(counts.items()), self.failures + other.failures)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"checked": dict(self.checked), "failed": [f.to_dict() for f in self.failures]}


def _has_value(values: frozenset[str], text: str) -> bool:
    return any(values & number_values(n) for n in number_strings(text))


def check_translation(
    part: str, sources: Sequence[ProtectedSentence], targets: Sequence[str], *, same_language: bool = False
) -> Checks:
    """Check `targets` (one per source sentence, in order) against `sources`. A fact that
    moved to a neighbouring sentence still counts as there (models merge and split)."""
    counts = {NUMBER: 0, TERM: 0, KEEP: 0, SENTENCES: len(sources)}
    failures: list[CheckFailure] = []
    whole = " ".join(targets)
    seen: dict[str, str] = {}  # translation -> the source it came from
    for i, source in enumerate(sources):
        target = targets[i] if i < len(targets) else ""
        if not source.text:
            continue
        if not target.strip():
            failures.append(CheckFailure(MISSING, part, i, source.text))
            continue
        if target in seen and seen[target] != source.text:
            failures.append(CheckFailure(DUPLICATED, part, i, source.text))
        seen.setdefault(target, source.text)
        if not same_language and target == source.text and _words_to_translate(source) >= UNTRANSLATED_MIN_WORDS:
            failures.append(CheckFailure(UNTRANSLATED, part, i, source.text))
        for number in number_strings(source.text):
            counts[NUMBER] += 1
            values = number_values(number)
            if not (_has_value(values, target) or _has_value(values, whole)):
                failures.append(CheckFailure(NUMBER, part, i, number))
        for span in source.spans:
            if span.kind == TERM:
                counts[TERM] += 1
                if span.output not in target and span.output not in whole:
                    failures.append(CheckFailure(TERM, part, i, span.output))
            elif span.kind == KEEP:
                counts[KEEP] += 1
                if span.text not in target and span.text not in whole:
                    failures.append(CheckFailure(KEEP, part, i, span.text))
    return Checks(tuple((k, v) for k, v in counts.items()), tuple(failures))


def failure_counts(checks: Mapping[str, Mapping[str, Any]], source_lang: str | None) -> dict[str, dict[str, int]]:
    """A result's failed checks counted by language pair and check: {"en-de": {"number": 2}}
    (what the worker's metrics count)."""
    counts: dict[str, dict[str, int]] = {}
    for lang, found in checks.items():
        for failure in found.get("failed", ()):
            by_check = counts.setdefault(f"{source_lang or 'und'}-{lang}", {})
            by_check[failure["check"]] = by_check.get(failure["check"], 0) + 1
    return counts


def _words_to_translate(sentence: ProtectedSentence) -> int:
    return len(_WORDS.findall("".join(p for p in sentence.segments() if isinstance(p, str))))
