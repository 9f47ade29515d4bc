"""Editors' corrections in the store, and the workers' view of them.

An editor corrects one sentence of a translated title or summary on the review page. In one
transaction the store then
- writes the corrected text where the result's text was (API, export and webhooks show it),
- records it in the job's `corrections` (the sentence, the machine text beside it, who, when),
- and remembers (source language, target language, source sentence) → the editor's text in
  `sentence_corrections`, which every later article with that sentence gets
  (`StoreCorrections`, the pipeline's `CorrectionSource`), whichever model would serve it.

Sentences are the target text split as the pipeline splits (`split_sentences`); the source
sentence is the same position in the source text of that part (the title, or the summary in
the language it was made in). When the two do not split into as many sentences, the
correction still replaces the output but cannot be remembered, and says so.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from pipeline.corrections import sentence_hash
from pipeline.languages import PIVOT, join_sentences
from pipeline.protect import normalize_sentence
from pipeline.segment import split_sentences
from worker.store.engine import Database
from worker.store.schema import SUMMARY, TITLE, ArticleRow, JobRow, SentenceCorrectionRow, TextRow, utcnow

log = logging.getLogger(__name__)

REFRESH_S = 5.0  # how stale a worker's corrections may be
MAX_CORRECTION_CHARS = 5_000
MAX_EDITOR_CHARS = 200


class CorrectionError(ValueError):
    """A correction that names no translated sentence, or text past the limits."""


@dataclass(frozen=True)
class Correction:
    kind: str
    lang: str
    sentence: int
    machine: str
    editor: str
    by: str
    at: str
    source_lang: str | None  # the language of the source sentence, None when it is not known
    source: str | None  # the source sentence, remembered for later articles; None if not
    remembered: bool


def part_source_lang(job: JobRow, article: ArticleRow, kind: str) -> str | None:
    """The language a part was translated from: the title from the article's language; the
    summary from the language it was made in (English when it went through the pivot)."""
    if kind == SUMMARY and (job.models or {}).get("summary_pivot"):
        return PIVOT
    return article.source_lang


class CorrectionStore(Database):
    """The store's corrections (a part of `worker.store.Store`)."""

    def correct(self, article_key: str, kind: str, lang: str, sentence: int, text: str, by: str) -> Correction:
        if kind not in (TITLE, SUMMARY):
            raise CorrectionError(f"kind: title or summary (got {kind!r})")
        editor = normalize_sentence(text)
        if not editor:
            raise CorrectionError("text: the corrected sentence must not be empty")
        if len(editor) > MAX_CORRECTION_CHARS:
            raise CorrectionError(f"text: at most {MAX_CORRECTION_CHARS:,} characters (got {len(editor):,})")
        by = normalize_sentence(by)[:MAX_EDITOR_CHARS] or "reviewer"
        now = utcnow()
        with self._write() as session:
            row = session.execute(
                select(JobRow, ArticleRow).join(ArticleRow, ArticleRow.key == JobRow.article_key)
                .where(ArticleRow.key == article_key).with_for_update()
            ).first()
            if row is None:
                raise CorrectionError(f"no article {article_key!r}")
            job, article = row.JobRow, row.ArticleRow
            source_lang = part_source_lang(job, article, kind)
            if lang == source_lang:
                raise CorrectionError(f"lang: {lang!r} is the source of the {kind}; correct a translation")
            texts = {(t.kind, t.lang): t for t in session.execute(
                select(TextRow).where(TextRow.article_key == article_key)).scalars()}
            target = texts.get((kind, lang))
            if target is None:
                raise CorrectionError(f"lang: the article has no {kind} in {lang!r}")
            sentences = _sentences(target.text, lang, kind)
            if not 0 <= sentence < len(sentences):
                raise CorrectionError(f"sentence: 0 to {len(sentences) - 1} for the {kind} in {lang!r} (got {sentence})")
            corrections = {k: {p: list(v) for p, v in parts.items()} for k, parts in (job.corrections or {}).items()}
            entries = corrections.setdefault(lang, {}).setdefault(kind, [])
            earlier = next((e for e in entries if e["sentence"] == sentence), None)
            machine = earlier["machine"] if earlier else sentences[sentence]
            sentences[sentence] = editor
            target.text = join_sentences(sentences, lang) if kind == SUMMARY else editor
            entry = {"sentence": sentence, "machine": machine, "editor": editor, "by": by, "at": now.isoformat()}
            entries[:] = sorted([e for e in entries if e["sentence"] != sentence] + [entry], key=lambda e: e["sentence"])
            job.corrections = corrections
            job.updated_at = now

            source_text = texts.get((kind, source_lang)) if source_lang else None
            source_sentences = _sentences(source_text.text, source_lang or "", kind) if source_text else []
            source = source_sentences[sentence] if len(source_sentences) == len(sentences) else None
            if source is not None and source_lang is not None:
                insert = self._insert(SentenceCorrectionRow).values(
                    source_lang=source_lang, target_lang=lang, source_hash=sentence_hash(source),
                    source_text=normalize_sentence(source), corrected=editor, machine=machine,
                    corrected_by=by, corrected_at=now,
                )
                session.execute(insert.on_conflict_do_update(
                    index_elements=["source_lang", "target_lang", "source_hash"],
                    set_={"corrected": insert.excluded.corrected, "machine": insert.excluded.machine,
                          "corrected_by": insert.excluded.corrected_by, "corrected_at": insert.excluded.corrected_at},
                ))
        return Correction(kind, lang, sentence, machine, editor, by, entry["at"], source_lang, source,
                          source is not None)

    def sentence_corrections(self) -> dict[tuple[str, str, str], str]:
        """(source, target, source hash) → the editor's translation, all of them."""
        with self._read() as session:
            rows = session.execute(select(SentenceCorrectionRow.source_lang, SentenceCorrectionRow.target_lang,
                                          SentenceCorrectionRow.source_hash, SentenceCorrectionRow.corrected))
            return {(s, t, h): c for s, t, h, c in rows}

    def corrections_version(self) -> tuple[int, Any]:
        """Changes whenever a correction is added or replaced: (count, latest time)."""
        with self._read() as session:
            count, latest = session.execute(
                select(func.count(), func.max(SentenceCorrectionRow.corrected_at))).one()
            return int(count), latest


def _sentences(text: str, lang: str, kind: str) -> list[str]:
    if kind == TITLE:
        return [text]
    return split_sentences(text, lang) or [text]


class StoreCorrections:
    """The pipeline's `CorrectionSource` over the store: every correction in memory, reloaded
    when the store's changed (asked at most every `refresh_s` seconds). When the store cannot
    be read, the corrections last loaded keep serving (logged)."""

    def __init__(self, store: CorrectionStore, refresh_s: float = REFRESH_S):
        self.store = store
        self.refresh_s = refresh_s
        self._corrections: dict[tuple[str, str, str], str] = {}
        self._version: tuple[int, Any] | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self, source: str, target: str, sentence: str) -> str | None:
        if time.monotonic() - self._checked >= self.refresh_s:
            self.refresh()
        return self._corrections.get((source, target, sentence_hash(sentence))) if self._corrections else None

    def refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < self.refresh_s:
                return
            try:
                version = self.store.corrections_version()
                if version != self._version:
                    self._corrections = self.store.sentence_corrections()
                    self._version = version
            except Exception as exc:  # a database fault must not fail translation
                log.warning("corrections not refreshed (store unreadable): %s", exc)
            self._checked = time.monotonic()
