"""Submitting articles: the one path the CLI (`enqueue`) and the API (`POST /v1/articles`) share.

    items → validate each (an invalid one is reported with its position and field; the
    others go on) → job rows and their messages (`Store.submit` with a `publish` callback:
    the rows and the decision to publish are one transaction, so each job is published once)
    → a report per item.

Messages of a batch go out through one producer in one Redis pipeline; the queue is declared
once, before the first job row, so a broker that is down leaves no rows behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from pipeline.article import Article, Limits, validate_article
from pipeline.exceptions import ArticleError
from worker.store import Submission

SUBMIT_BATCH = 500  # rows per INSERT and messages per Redis pipeline


@dataclass(frozen=True)
class Rejection:
    """One item that was not accepted: where it was, which field, and why."""

    position: int  # index in a request's list (0-based) or line in a file (1-based)
    field: str  # "article" when the item as a whole is wrong
    message: str
    source: str | None = None  # the file, for the CLI

    @classmethod
    def of(cls, position: int, error: ArticleError, source: str | None = None) -> "Rejection":
        return cls(position, error.field, error.message, source)

    @property
    def error(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Accepted:
    position: int
    article: Article
    submission: Submission


@dataclass
class SubmissionReport:
    """Counts, rejections, and — when the caller needs them — the accepted items or their job
    ids. `enqueue` of a 1,000,000-line file keeps neither unless it prints or follows the
    ids (`--json`, `--wait`), so its memory stays flat however long the input is."""

    accepted: int = 0
    duplicates: int = 0
    resent: int = 0  # duplicates whose message had never gone out, sent now
    items: list[Accepted] = field(default_factory=list)  # with keep_items
    job_ids: list[str] = field(default_factory=list)  # with keep_job_ids, in input order
    rejected: list[Rejection] = field(default_factory=list)
    keep_items: bool = True
    keep_job_ids: bool = True

    def add(self, accepted: Iterable[Accepted]) -> None:
        for item in accepted:
            if self.keep_items:
                self.items.append(item)
            if self.keep_job_ids:
                self.job_ids.append(item.submission.job_id)
            if item.submission.duplicate:
                self.duplicates += 1
                self.resent += item.submission.send
            else:
                self.accepted += 1


def validate_item(position: int, data: Any, limits: Limits, source: str | None = None) -> Article | Rejection:
    try:
        return validate_article(data, limits)
    except ArticleError as exc:
        return Rejection.of(position, exc, source)


class Submitter:
    """Job rows and their messages for one queue, batch by batch, through one broker connection."""

    def __init__(self, store: Any, celery_app: Any, queue: str):
        self.store = store
        self.queue = queue
        self.celery_app = celery_app
        self._connection = celery_app.connection_for_write()
        # The queue is declared once, before the first message, not once per message
        # (kombu's auto_declare and Celery's per-message `declare` cost more than publishing).
        self.producer = celery_app.amqp.Producer(self._connection, auto_declare=False)
        self._declared = False

    def __enter__(self) -> "Submitter":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._connection.release()

    def submit(self, articles: Sequence[tuple[int, Article]], report: SubmissionReport) -> list[Accepted]:
        """Submit (position, article) pairs; add them to `report`; return them, in order."""
        if not articles:
            return []
        if not self._declared:
            # Before any job row: the broker connection is up (or this fails) when a job is
            # created, so its created_at → publish is the publish alone, not a connect.
            self.producer.maybe_declare(self.celery_app.amqp.queues[self.queue], retry=True,
                                        **self.celery_app.conf.task_publish_retry_policy)
            self._declared = True
        submissions = self.store.submit([a for _, a in articles], self.queue, self._publish)
        accepted = [Accepted(pos, a, s) for (pos, a), s in zip(articles, submissions)]
        report.add(accepted)
        return accepted

    def _publish(self, to_send: list[tuple[Article, Submission]]) -> None:
        from tasks.process import TASK_NAME

        # One Redis pipeline for the whole batch (kombu's Producer.batch), one connection.
        with self.producer.batch(max_size=SUBMIT_BATCH):
            for article, sub in to_send:
                self.celery_app.send_task(
                    TASK_NAME,
                    kwargs={"article": article.model_dump(mode="json", exclude_none=True)},
                    queue=self.queue,
                    task_id=sub.job_id,
                    producer=self.producer,
                    declare=[],
                    # Celery would otherwise repr() the whole article for events and logs:
                    # a third of the publishing time, and article text where none belongs.
                    argsrepr="()",
                    kwargsrepr="{'article': {...}}",
                )


@dataclass(frozen=True)
class Item:
    """A raw item to submit: where it came from, and its data (a dict from JSON, CSV, a form)."""

    position: int
    data: Any
    source: str | None = None


def submit_items(
    submitter: Submitter, items: Iterable[Item | Rejection], limits: Limits, report: SubmissionReport,
    *, batch_size: int = SUBMIT_BATCH, on_batch: Callable[[int], None] | None = None,
) -> SubmissionReport:
    """Validate items and submit the valid ones in batches; a rejected item is reported and
    costs nothing else. An item may be a Rejection already (a line of a file that was not
    JSON). `on_batch(n)` after each batch (progress)."""
    for batch in _batches(items, limits, report, batch_size):
        submitter.submit(batch, report)
        if on_batch is not None:
            on_batch(len(batch))
    return report


def _batches(
    items: Iterable[Item | Rejection], limits: Limits, report: SubmissionReport, size: int
) -> Iterator[list[tuple[int, Article]]]:
    batch: list[tuple[int, Article]] = []
    for item in items:
        checked = item if isinstance(item, Rejection) else validate_item(item.position, item.data, limits, item.source)
        if isinstance(checked, Rejection):
            report.rejected.append(checked)
            continue
        batch.append((item.position, checked))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
