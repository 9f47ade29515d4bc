"""Glossaries in the SQL store, and the workers' view of them.

A glossary maps (source, target, term) to the rendering translation must use, or to None:
keep the term as it is (names, brands, programme titles). Each direction has a version
that every change raises, in the transaction that makes the change.

`StoreGlossaries` is the pipeline's `GlossarySource` over the store: a worker process
holds the terms of each direction in memory (one Aho-Corasick automaton per direction)
and asks the store for the versions at most every `refresh_s` seconds, reloading only a
direction whose version moved. The translation memory keys every protected sentence on
the terms that matched it and their renderings, so a changed glossary never serves a
stale sentence, and sentences it does not touch still hit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import delete, func, select, tuple_

from pipeline.protect import Glossary
from worker.store.engine import Database
from worker.store.schema import GlossaryRow, GlossaryTermRow, utcnow

log = logging.getLogger(__name__)

Pair = tuple[str, str]


@dataclass(frozen=True)
class GlossaryEntry:
    source: str
    target: str
    term: str
    rendering: str | None  # None: keep as is

    def to_dict(self) -> dict[str, str | None]:
        return {"source": self.source, "target": self.target, "term": self.term,
                "rendering": self.rendering, "keep": self.rendering is None}


class GlossaryStore(Database):
    """The store's glossary tables (a part of `worker.store.Store`)."""

    def import_glossary(self, entries: Sequence[GlossaryEntry]) -> dict[Pair, int]:
        """Add or replace terms (a term already there takes the new rendering). Returns the
        terms written per direction; each direction written gets a new version."""
        written: dict[Pair, int] = {}
        latest: dict[tuple[str, str, str], GlossaryEntry] = {}
        for entry in entries:  # the file's last word on a term counts
            latest[(entry.source, entry.target, entry.term)] = entry
        if not latest:
            return written
        now = utcnow()
        rows = [{"source": e.source, "target": e.target, "term": e.term, "rendering": e.rendering,
                 "updated_at": now} for e in latest.values()]
        with self._write() as session:
            for start in range(0, len(rows), 1000):
                chunk = rows[start : start + 1000]
                insert = self._insert(GlossaryTermRow).values(chunk)
                session.execute(insert.on_conflict_do_update(
                    index_elements=["source", "target", "term"],
                    set_={"rendering": insert.excluded.rendering, "updated_at": insert.excluded.updated_at},
                ))
            for entry in latest.values():
                pair = (entry.source, entry.target)
                written[pair] = written.get(pair, 0) + 1
            self._bump(session, written, now)
        return written

    def remove_glossary(self, source: str, target: str, terms: Iterable[str] | None = None) -> int:
        """Remove terms of one direction (all of them when `terms` is None). Returns how many."""
        now = utcnow()
        where = [GlossaryTermRow.source == source, GlossaryTermRow.target == target]
        with self._write() as session:
            if terms is None:
                removed = session.execute(delete(GlossaryTermRow).where(*where)).rowcount
            else:
                removed = 0
                wanted = sorted(set(terms))
                for start in range(0, len(wanted), 500):
                    removed += session.execute(
                        delete(GlossaryTermRow).where(*where, GlossaryTermRow.term.in_(wanted[start : start + 500]))
                    ).rowcount
            if removed:
                self._bump(session, {(source, target): removed}, now)
        return removed

    def _bump(self, session: object, pairs: Iterable[Pair], now: object) -> None:
        pairs = sorted(set(pairs))
        insert = self._insert(GlossaryRow).values(
            [{"source": s, "target": t, "version": 1, "updated_at": now} for s, t in pairs]
        )
        session.execute(insert.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=["source", "target"],
            set_={"version": GlossaryRow.version + 1, "updated_at": insert.excluded.updated_at},
        ))

    def glossary_versions(self) -> dict[Pair, int]:
        with self._read() as session:
            rows = session.execute(select(GlossaryRow.source, GlossaryRow.target, GlossaryRow.version))
            return {(s, t): v for s, t, v in rows}

    def glossary_entries(self, source: str | None = None, target: str | None = None,
                         pairs: Sequence[Pair] | None = None) -> list[GlossaryEntry]:
        """Terms, ordered by direction and term; filtered by language or by directions."""
        query = select(GlossaryTermRow.source, GlossaryTermRow.target, GlossaryTermRow.term, GlossaryTermRow.rendering)
        if source:
            query = query.where(GlossaryTermRow.source == source)
        if target:
            query = query.where(GlossaryTermRow.target == target)
        if pairs is not None:
            if not pairs:
                return []
            query = query.where(tuple_(GlossaryTermRow.source, GlossaryTermRow.target).in_(list(pairs)))
        query = query.order_by(GlossaryTermRow.source, GlossaryTermRow.target, GlossaryTermRow.term)
        with self._read() as session:
            return [GlossaryEntry(*row) for row in session.execute(query)]

    def glossary_counts(self) -> dict[Pair, tuple[int, int]]:
        """Per direction: (terms, version)."""
        with self._read() as session:
            counts = dict(((s, t), n) for s, t, n in session.execute(
                select(GlossaryTermRow.source, GlossaryTermRow.target, func.count())
                .group_by(GlossaryTermRow.source, GlossaryTermRow.target)
            ))
        versions = self.glossary_versions()
        return {pair: (counts.get(pair, 0), version) for pair, version in sorted(versions.items())}


def build_glossary(entries: Iterable[GlossaryEntry], version: str = "") -> Glossary:
    entries = list(entries)
    return Glossary(
        keep=tuple(e.term for e in entries if e.rendering is None),
        render=tuple((e.term, e.rendering) for e in entries if e.rendering is not None),
        version=version,
    )


class StoreGlossaries:
    """The pipeline's `GlossarySource` over the store, refreshed every `refresh_s` seconds
    at most (one small query); a direction is reloaded only when its version moved. When the
    store cannot be read, the glossaries last loaded keep serving (logged)."""

    def __init__(self, store: GlossaryStore, refresh_s: float = 5.0):
        self.store = store
        self.refresh_s = refresh_s
        self._glossaries: dict[Pair, Glossary] = {}
        self._versions: dict[Pair, int] = {}
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self, source: str, target: str) -> Glossary | None:
        if time.monotonic() - self._checked >= self.refresh_s:
            self.refresh()
        return self._glossaries.get((source, target))

    def refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < self.refresh_s:
                return  # another thread just did
            try:
                versions = self.store.glossary_versions()
                moved = [pair for pair, v in versions.items() if self._versions.get(pair) != v]
                entries = self.store.glossary_entries(pairs=moved) if moved else []
            except Exception as exc:  # a database fault must not fail translation
                log.warning("glossaries not refreshed (store unreadable): %s", exc)
                self._checked = time.monotonic()
                return
            by_pair: dict[Pair, list[GlossaryEntry]] = {pair: [] for pair in moved}
            for entry in entries:
                by_pair[(entry.source, entry.target)].append(entry)
            glossaries = {pair: g for pair, g in self._glossaries.items() if pair in versions}
            for pair, pair_entries in by_pair.items():
                glossaries[pair] = build_glossary(pair_entries, version=f"{pair[0]}-{pair[1]}@{versions[pair]}")
                glossaries[pair].matches("")  # build the automaton now, not in the first article
            if moved:
                log.info("glossaries loaded: %s", ", ".join(f"{s}-{t} v{versions[(s, t)]}" for s, t in moved))
            self._glossaries, self._versions = glossaries, versions
            self._checked = time.monotonic()
