"""The read side of the store: counts, jobs, results and articles, and the streamed export."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.result import Result
from worker.store.engine import Database
from worker.store.jobs import chunks
from worker.store.schema import FINISHED, MAX_ID_CHARS, STATUSES, TITLE, ArticleRow, JobRow, TextRow


def usable_id(value: str) -> bool:
    """Whether `value` can name a row at all: short enough, and no NUL (PostgreSQL refuses
    NUL in text, so a lookup with one would fail instead of finding nothing)."""
    return len(value) <= MAX_ID_CHARS and "\0" not in value


class ResultReads(Database):
    def counts(self, job_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Jobs by status (all jobs, or the given ones). Every status is present."""
        counts: Counter[str] = Counter({s: 0 for s in STATUSES})
        with self._read() as session:
            if job_ids is None:
                for status, n in session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)):
                    counts[status] += n
            else:
                for chunk in chunks(list(job_ids)):
                    for status, n in session.execute(
                        select(JobRow.status, func.count()).where(JobRow.id.in_(chunk)).group_by(JobRow.status)
                    ):
                        counts[status] += n
        return dict(counts)

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._read() as session:
            for chunk in chunks(list(job_ids)):
                out.update(session.execute(select(JobRow.id, JobRow.status).where(JobRow.id.in_(chunk))).all())
        return out

    def job(self, job_id: str) -> JobRow | None:
        if not usable_id(job_id):
            return None
        with self._read() as session:
            return session.get(JobRow, job_id)

    def result(self, job_id: str) -> Result | None:
        """The job as a Result (queued/running jobs too, with what is known so far)."""
        if not usable_id(job_id):
            return None
        with self._read() as session:
            row = session.execute(
                select(JobRow, ArticleRow).join(ArticleRow, ArticleRow.key == JobRow.article_key).where(
                    JobRow.id == job_id
                )
            ).first()
            if row is None:
                return None
            return result_in_session(session, row.JobRow, row.ArticleRow)

    def iter_results(
        self, *, since: datetime | None = None, langs: Sequence[str] = (), page: int = 500
    ) -> Iterator[Result]:
        """Finished jobs as Results, oldest first, streamed page by page (keyset pagination:
        no transaction stays open between pages, so workers keep writing meanwhile).

        `since` keeps jobs finished at or after it; `langs` keeps only those languages' texts.
        """
        after: tuple[datetime, str] | None = None
        while True:
            with self._read() as session:
                stmt = (
                    select(JobRow, ArticleRow)
                    .join(ArticleRow, ArticleRow.key == JobRow.article_key)
                    .where(JobRow.status.in_(sorted(FINISHED)))
                    .order_by(JobRow.finished_at, JobRow.id)
                    .limit(page)
                )
                if since is not None:
                    stmt = stmt.where(JobRow.finished_at >= since)
                if after is not None:
                    stmt = stmt.where(
                        (JobRow.finished_at > after[0]) | ((JobRow.finished_at == after[0]) & (JobRow.id > after[1]))
                    )
                rows = session.execute(stmt).all()
                if not rows:
                    return
                texts = _texts_by_article(session, [r.JobRow.article_key for r in rows], langs)
            for r in rows:
                result = _to_result(r.JobRow, r.ArticleRow, texts.get(r.JobRow.article_key, []))
                if langs:
                    result.title = {k: v for k, v in result.title.items() if k in langs}
                    result.summary = {k: v for k, v in result.summary.items() if k in langs}
                yield result
            last = rows[-1].JobRow
            after = (last.finished_at, last.id)  # type: ignore[assignment]

    def recent_jobs(self, status: str | None = None, limit: int = 50) -> list[tuple[JobRow, ArticleRow]]:
        """The most recently updated jobs (of one status, or all) with their articles."""
        with self._read() as session:
            stmt = (
                select(JobRow, ArticleRow)
                .join(ArticleRow, ArticleRow.key == JobRow.article_key)
                .order_by(JobRow.updated_at.desc(), JobRow.id)
                .limit(limit)
            )
            if status is not None:
                stmt = stmt.where(JobRow.status == status)
            return [(r.JobRow, r.ArticleRow) for r in session.execute(stmt).all()]

    def find_articles(self, article_id: str, limit: int = 20) -> list[tuple[ArticleRow, JobRow]]:
        """Articles whose key, else whose external id, is `article_id`, newest first (in
        submission order), with their jobs. An external id can name several articles (the same
        story resubmitted edited)."""
        if not usable_id(article_id):
            return []
        with self._read() as session:
            base = select(ArticleRow, JobRow).join(JobRow, JobRow.article_key == ArticleRow.key)
            rows = session.execute(base.where(ArticleRow.key == article_id)).all()
            if not rows:
                rows = session.execute(
                    base.where(ArticleRow.external_id == article_id)
                    .order_by(ArticleRow.created_at.desc(), ArticleRow.key)
                    .limit(limit)
                ).all()
            return [(r.ArticleRow, r.JobRow) for r in rows]

    def row_counts(self) -> dict[str, int]:
        """Rows per table (for checks that nothing was duplicated)."""
        with self._read() as session:
            return {
                "articles": session.scalar(select(func.count()).select_from(ArticleRow)) or 0,
                "jobs": session.scalar(select(func.count()).select_from(JobRow)) or 0,
                "texts": session.scalar(select(func.count()).select_from(TextRow)) or 0,
            }


def result_in_session(session: Session, job: JobRow, article: ArticleRow) -> Result:
    """The job as a Result, read in `session` (a caller's transaction)."""
    texts = _texts_by_article(session, [job.article_key])
    return _to_result(job, article, texts.get(job.article_key, []))


def _texts_by_article(session: Session, keys: Sequence[str], langs: Sequence[str] = ()) -> dict[str, list[TextRow]]:
    out: dict[str, list[TextRow]] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        stmt = select(TextRow).where(TextRow.article_key.in_(chunk)).order_by(TextRow.id)
        if langs:
            stmt = stmt.where(TextRow.lang.in_(list(langs)))
        for t in session.execute(stmt).scalars():
            out.setdefault(t.article_key, []).append(t)
    return out


def _to_result(job: JobRow, article: ArticleRow, texts: list[TextRow]) -> Result:
    result = Result(
        article_id=job.article_key,
        external_id=article.external_id,
        status=job.status,
        source_lang=article.source_lang,
        source_lang_confidence=article.source_lang_confidence,
        models=dict(job.models or {}),
        errors=dict(job.errors or {}),
        timings_ms=dict(job.timings or {}),
        checks=dict(job.checks or {}),
        corrections=dict(job.corrections or {}),
        job_id=job.id,
    )
    if job.error and not result.errors:
        result.errors["job"] = job.error
    for t in texts:
        (result.title if t.kind == TITLE else result.summary)[t.lang] = t.text
    return result
