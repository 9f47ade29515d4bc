"""`babelwire.process_article` (docs/contracts.md, Celery task): the one Celery task.

Thin on purpose: validate the message, claim the job in the store (running, attempts+1),
run `pipeline.process`, write the result, mark the job done/partial/failed.

What it is handed, it does not build: the worker binds a `TaskContext` (store, engines,
limits, which errors are transient) once per worker process, see `worker.celery_app`. This
keeps `tasks/` free of the worker's configuration and SQL code (dependencies point
worker → tasks → pipeline).

Failure policy:
- bad input (`ArticleError`) is never retried: the job is stored `failed` with the field and
  limit that broke, when the message carries an article object; anything less (no article,
  not an object) is logged and dropped — acked, so it cannot loop;
- a store that cannot be reached (database down, SQLite busy) is waited for inside the
  task, with exponential backoff and jitter, for up to `TaskContext.store_wait_s`: the worker
  takes no new message meanwhile (prefetch 1, acks late), so an outage leaves the backlog in
  Redis, where it is safe, instead of pulling it through retries that run out;
- transient faults past that wait (and broker faults) are retried through the broker with
  exponential backoff and jitter, `MAX_RETRIES` times;
- a pipeline crash or soft time limit fails the job with a readable error (no retry: the same
  input would crash again);
- a worker that dies mid-article (SIGKILL, OOM) leaves the message unacked: it is delivered
  again (acks_late + reject_on_worker_lost) and the writes are idempotent upserts; after
  `MAX_ATTEMPTS` deliveries the job fails for good, so a poison article cannot loop forever.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, TypeVar

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.article import Article, Limits, validate_article
from pipeline.batching import ArticleBatcher, BatchOptions
from pipeline.engines import Engines
from pipeline.exceptions import ArticleError
from pipeline.checks import failure_counts
from pipeline.process import ProcessOptions
from pipeline.result import Result

log = logging.getLogger(__name__)

TASK_NAME = "babelwire.process_article"
MAX_RETRIES = 6  # transient faults: ~2+4+8+16+32+60 s of outage ride-through (with the default cap)
RETRY_BASE_S = 2
MAX_ATTEMPTS = MAX_RETRIES + 3  # deliveries of one job, retries included, before giving up
SOFT_LIMIT_SLACK_S = 0.05  # Celery's timer starts a little before the task body does

BROKER_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
)


class JobClaim(Protocol):
    job_id: str
    proceed: bool
    status: str
    reason: str


class JobStore(Protocol):
    """What the task needs from the store (`worker.store.Store` provides it)."""

    def start_job(
        self, article: Article, message_id: str, queue: str, max_attempts: int, *,
        retries: int | None = None, redelivered: bool = False,
    ) -> JobClaim: ...

    def finish_job(self, job_id: str, result: Result) -> None: ...

    def fail_job(self, job_id: str, error: str) -> None: ...

    def record_malformed(self, message_id: str, raw: dict[str, Any], queue: str, error: str) -> str: ...


@dataclass
class TaskContext:
    """Everything one worker process needs to run the task, built once at process start."""

    store: JobStore
    engines: Engines
    limits: Limits
    transient_errors: tuple[type[BaseException], ...] = BROKER_TRANSIENT_ERRORS
    options: ProcessOptions | None = None
    batch: BatchOptions = field(default_factory=BatchOptions)
    retry_max_delay_s: int = 60
    store_wait_s: float = 0.0  # how long a task waits for an unreachable store (0: not at all)
    # Called with the article's key once a message validates: the worker binds it to the
    # task's log lines (the article is validated once, here, and nowhere else).
    on_article: Callable[[str], None] | None = None
    pid: int = field(default_factory=os.getpid)
    batcher: ArticleBatcher = field(init=False)

    def __post_init__(self) -> None:
        # one per process: the pool's threads share it (a no-op pass-through when batch is 1)
        self.batcher = ArticleBatcher(self.engines, self.options, self.batch)


class ArticleTask(Task):
    """Task class holding the per-process `TaskContext`.

    Celery keeps one instance of a task class per process, which makes it the documented
    place for per-process resources. `context_factory` is set by the worker's app;
    `warm_up()` builds the context (and loads models) and is called at process start —
    never per task. A context inherited through fork is rebuilt (SQL connections and
    CTranslate2 threads do not survive a fork).
    """

    context_factory: ClassVar[Callable[[], TaskContext] | None] = None
    # Opens just the store: the worker's main process records hard time limits with it.
    store_factory: ClassVar[Callable[[], JobStore] | None] = None
    _context: ClassVar[TaskContext | None] = None
    _failure_store: ClassVar[tuple[int, JobStore] | None] = None
    _context_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def bind_context(
        cls, factory: Callable[[], TaskContext] | None, store_factory: Callable[[], JobStore] | None = None
    ) -> None:
        cls.context_factory = factory
        cls.store_factory = store_factory
        cls._context = None
        cls._failure_store = None

    @classmethod
    def warm_up(cls) -> TaskContext:
        with cls._context_lock:
            if cls._context is None or cls._context.pid != os.getpid():
                if cls.context_factory is None:
                    raise RuntimeError(
                        f"{TASK_NAME}: no task context bound; run tasks under `babelwire worker`"
                    )
                cls._context = cls.context_factory()
            return cls._context

    @property
    def context(self) -> TaskContext:
        context = type(self)._context
        if context is None or context.pid != os.getpid():
            return type(self).warm_up()
        return context

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """The task failed past its own handling: the job must not stay `running`.

        Two ways to get here: retries exhausted (in the pool process), or the hard time limit
        (in the worker's main process, after Celery killed the pool process — typically a
        CTranslate2 call that the soft limit could not interrupt). Only the message's own job
        is touched (`fail_job` leaves finished jobs alone)."""
        if isinstance(exc, TimeLimitExceeded):
            error = f"killed at the hard time limit ({self.time_limit or self.app.conf.task_time_limit} s)"
        else:
            error = f"gave up: {type(exc).__name__}: {exc}"
        try:
            self._store_for_failures().fail_job(task_id, error)
        except Exception:
            log.exception("job %s: could not record the failure (%s)", task_id, error)

    def _store_for_failures(self) -> JobStore:
        cls = type(self)
        context = cls._context
        if context is not None and context.pid == os.getpid():
            return context.store
        with cls._context_lock:
            if cls._failure_store is None or cls._failure_store[0] != os.getpid():
                if cls.store_factory is None:
                    raise RuntimeError("no store bound")
                cls._failure_store = (os.getpid(), cls.store_factory())
            return cls._failure_store[1]


T = TypeVar("T")


def _with_store(context: TaskContext, message_id: str, call: Callable[[], T]) -> T:
    """Run a store call; while the store is unreachable, wait and try again (backoff with
    jitter) for up to `context.store_wait_s`, then let the fault through (a broker retry).

    Waiting here rather than retrying through the broker is what keeps a long outage from
    losing work: this task holds its one message and the worker takes no other, where a
    retry would ack it and take the next, until every message of the backlog had spent its
    retries on the outage."""
    deadline = time.monotonic() + context.store_wait_s
    waits = 0
    while True:
        try:
            return call()
        except context.transient_errors as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            delay = min(left, retry_delay(waits, context.retry_max_delay_s))
            waits += 1
            log.warning("message %s: store unreachable (%s); wait %d, %.1f s", message_id,
                        str(exc).splitlines()[0][:200], waits, delay)
            time.sleep(delay)


def retry_delay(retries: int, max_delay_s: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random (so a fleet of
    workers that lost the database together does not come back in lockstep)."""
    step = min(max_delay_s, RETRY_BASE_S * 2**retries)
    return step / 2 + random.uniform(0, step / 2)


@shared_task(bind=True, base=ArticleTask, name=TASK_NAME, max_retries=MAX_RETRIES, ignore_result=True)
def process_article(self: ArticleTask, /, *args: Any, article: Any = None, **unexpected: Any) -> dict[str, Any]:
    """Process the article in kwargs `{"article": {...}}` (docs/contracts.md, Article) and store its result.

    (`self` is positional-only: a message's kwargs may use any name, "self" included.)"""
    try:
        context = self.context
    except Exception as exc:  # the process could not open its store or models: not the message's fault
        log.exception("message %s: worker process not ready", self.request.id)
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries, 60))
    message_id: str = self.request.id
    queue: str = (self.request.delivery_info or {}).get("routing_key") or "live"
    try:
        try:
            workflow = _drop_workflow(self.request)
            if args or unexpected or workflow:
                extra = [f"{len(args)} positional argument(s)"] if args else []
                extra += [f"argument {name!r}" for name in sorted(unexpected)]
                extra += [f"workflow field {name!r}" for name in workflow]
                raise ArticleError(
                    "message", f"unexpected {', '.join(extra)}; send kwargs={{'article': {{...}}}} only"
                )
            valid = validate_article(article, context.limits)
            if context.on_article is not None:
                context.on_article(valid.key)
        except ArticleError as exc:
            # an article sent as the only positional argument still identifies its job
            raw = article if article is not None or len(args) != 1 else args[0]
            return _reject(context, message_id, raw, queue, exc)

        # A running job is taken over only by a retry of this message (its delivery gave up)
        # or a redelivery (the broker gave the message back: its worker is gone); another
        # copy of the message is dropped (never two runs at once)
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        claim = _with_store(context, message_id, lambda: context.store.start_job(
            valid, message_id, queue, MAX_ATTEMPTS, retries=self.request.retries or 0, redelivered=redelivered))
        if not claim.proceed:
            log.info("job %s not processed by message %s: %s", claim.job_id, message_id, claim.reason)
            return {"job_id": claim.job_id, "status": claim.status, "skipped": claim.reason}
        soft_limit = _soft_time_limit(self)
        started = time.monotonic()
        try:
            result = context.batcher.process(valid)
            # The pipeline keeps going when one stage fails (a fallback, an error for one
            # language), and SoftTimeLimitExceeded is an Exception like any other: a result
            # that arrives past the limit may have had any stage cut short, so it is not kept.
            if soft_limit and time.monotonic() - started >= soft_limit - SOFT_LIMIT_SLACK_S:
                raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded:
            error = f"took longer than the soft time limit ({soft_limit:g} s)"
            _with_store(context, message_id, lambda: context.store.fail_job(claim.job_id, error))
            return {"job_id": claim.job_id, "status": "failed", "error": error}
        except context.transient_errors:
            raise
        except Exception as exc:  # a pipeline bug or a broken model: same input, same crash
            log.exception("job %s: pipeline failed", claim.job_id)
            error = f"pipeline error: {type(exc).__name__}: {exc}"
            _with_store(context, message_id, lambda: context.store.fail_job(claim.job_id, error))
            return {"job_id": claim.job_id, "status": "failed", "error": error}
        result.job_id = claim.job_id
        _with_store(context, message_id, lambda: context.store.finish_job(claim.job_id, result))
        # what the worker's metrics and logs need, so they neither validate the article
        # again nor read the job back
        done = {"job_id": claim.job_id, "status": result.status, "article_id": valid.key,
                "timings_ms": dict(result.timings_ms), "models": dict(result.models)}
        failures = failure_counts(result.checks, result.source_lang)
        if failures:  # for the worker's metrics (babelwire_check_failures_total)
            done["check_failures"] = failures
        return done
    except context.transient_errors as exc:
        if self.request.retries >= MAX_RETRIES:
            log.error("message %s: giving up after %d retries: %s", message_id, self.request.retries, exc)
            raise
        delay = retry_delay(self.request.retries, context.retry_max_delay_s)
        log.warning("message %s: transient fault (%s); retry %d in %.1f s",
                    message_id, exc, self.request.retries + 1, delay)
        raise self.retry(exc=exc, countdown=delay)


WORKFLOW_FIELDS = ("callbacks", "errbacks", "chain", "chord")


def _drop_workflow(request: Any) -> list[str]:
    """Remove the callbacks, errbacks, chain and chord a message carries; returns which it had.

    This task ends no workflow: a message must not make the worker publish other messages
    (to any task, with any serializer) after it has run."""
    present = [name for name in WORKFLOW_FIELDS if getattr(request, name, None)]
    for name in present:
        setattr(request, name, None)
    return present


def _soft_time_limit(task: ArticleTask) -> float | None:
    """The soft limit this message runs under (per-message, else the task's, else the app's)."""
    per_message = (task.request.timelimit or (None, None))[1]
    return per_message or task.soft_time_limit or task.app.conf.task_soft_time_limit


def _reject(context: TaskContext, message_id: str, raw: Any, queue: str, exc: ArticleError) -> dict[str, Any]:
    """Bad input: a stored failed job when the message has an article object, else a log line."""
    error = str(exc)
    if isinstance(raw, dict):
        job_id = _with_store(context, message_id, lambda: context.store.record_malformed(message_id, raw, queue, error))
        log.warning("job %s failed validation: %s", job_id, error)
        return {"job_id": job_id, "status": "failed", "error": error}
    log.error("message %s dropped: %s (article is %s)", message_id, error, type(raw).__name__)
    return {"job_id": None, "status": "dropped", "error": error}
