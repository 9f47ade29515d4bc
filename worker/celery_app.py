"""The Celery app: Redis broker, JSON only, at-least-once delivery, live before bulk.

Delivery (at least once): `task_acks_late` (a message is acked after the task ran, not when
it was received), `task_reject_on_worker_lost` (a pool process that dies puts its message
back), `worker_prefetch_multiplier=1` (a worker holds no more messages than it runs), and
leases on Redis's `visibility_timeout` (worker/broker/lease.py: the worker renews its hold on
every message it has taken, so a vanished worker's messages are handed out again within
about one visibility timeout, 60 s, and a running one never, however long it runs). The
store's unique keys make a second delivery harmless. The Redis transport itself (atomic
claim, dead-letter list, envelope checks) is in worker/broker/.

Live before bulk. Redis has no message priorities, so the choice of queue is the priority:
a worker takes its next message with ONE atomic claim over `live bulk` (a Lua script in
place of kombu's `BRPOP live bulk`, see worker/broker/claim.py), which pops from the first
non-empty list in the order given. kombu's default `round_robin` strategy
moves the queue it just took from to the end of that order (to stop one queue starving
the other), so with several live messages waiting it alternates live, bulk, live, bulk;
we set `queue_order_strategy="priority"`, which keeps the order fixed. So each time a pool
slot frees up, the next message is a live one if any is waiting, however long the bulk
backlog (tests/test_worker_e2e.py checks this, and fails with `round_robin`). The cost, accepted: a live message still waits for the article(s) already
running to finish (one article per slot, bounded by the time limits), and a sustained live
flood starves bulk (which is what "live first" means). With prefetch 1 and acks_late a
worker has no private buffer of bulk messages for the live one to queue behind. For a
hard latency bound, add dedicated live capacity: `babelwire worker -Q live`.
`priority_steps=[0]` keeps Redis priority sub-queues out of it (one list per queue).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from pipeline.batching import BatchOptions
from tasks.process import BROKER_TRANSIENT_ERRORS, TASK_NAME, ArticleTask, TaskContext
from worker.broker.hooks import require_hooks
from worker.broker.server import REDIS_SCHEMES, broker_tls
from worker.config import Settings, get_settings
from worker.queues import LIVE, QUEUES

log = logging.getLogger(__name__)


RETRY_MAX_DELAY_S = 60  # cap on a retry's countdown (a message held for its ETA keeps its lease)


ETA_CLOCK_SLACK_S = 5  # a retry's ETA is set by one worker's clock and read by another's


def max_eta(settings: Settings) -> float:
    """How far ahead a message's ETA may lie (further: refused, dead-lettered).

    Our own retries publish ETAs (a countdown of at most RETRY_MAX_DELAY_S), and a message
    cannot prove it is one of them (every header can be forged by whoever can write to
    Redis), so the bound is what our retries produce, plus clock slack, unless
    BABELWIRE_BROKER_MAX_ETA_S allows more. An outside ETA within that bound costs a worker
    slot for at most about a minute; a far-future one used to be held, and handed out again
    at every visibility timeout, until its time came."""
    return max(settings.broker_max_eta_s, RETRY_MAX_DELAY_S + ETA_CLOCK_SLACK_S)


def broker_transport(broker_url: str) -> str | None:
    """The guarded transport for a Redis or Sentinel broker URL (None: Celery's choice)."""
    from worker.broker.transport import REDIS_TRANSPORT, SENTINEL_TRANSPORT, register_sentinel_scheme

    if broker_url.startswith(REDIS_SCHEMES):
        return REDIS_TRANSPORT
    if broker_url.startswith("sentinel://"):
        register_sentinel_scheme()
        return SENTINEL_TRANSPORT
    return None


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()  # cross-field rules are validators on Settings
    transport = broker_transport(settings.broker_url)
    if transport is not None:
        require_hooks()
    app = Celery("babelwire", broker=settings.broker_url, backend=settings.result_backend, include=["tasks.process"])
    app.conf.update(
        # JSON only: pickle would let whoever can write to Redis run code in the worker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        # at-least-once delivery
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,  # Redis will redeliver them
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_connection_retry_on_startup=True,
        # redis://, rediss:// and sentinel:// get the guarded transport (worker/broker/)
        broker_transport=transport,
        broker_use_ssl=broker_tls(settings.broker_url),
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            "lease_renew_s": settings.lease_renew_interval,
            "queue_order_strategy": "priority",
            "priority_steps": [0],
            # sweep for messages of lost workers (leases lapsed) once per renewal interval
            "unacked_restore_interval": max(1.0, settings.lease_renew_interval),
            "unacked_restore_throttle": 1,
            "dead_letter_max": settings.broker_dead_letter_max,
            "max_eta_s": max_eta(settings),
            "publish_wait_replicas": settings.broker_publish_replicas,
            "publish_wait_timeout_ms": settings.broker_publish_replica_timeout_ms,
            **({"master_name": settings.broker_sentinel_master} if settings.broker_sentinel_master else {}),
        },
        # queues: live (default: news site, API) and bulk (CLI batches)
        # each queue its own direct exchange, as a bare `Celery().send_task(queue=...)` declares it
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue=LIVE,
        task_create_missing_queues=False,
        # results live in the SQL store; Celery's result backend is optional
        task_ignore_result=settings.result_backend is None,
        worker_send_task_events=True,  # for Flower
        task_send_sent_event=False,
        worker_hijack_root_logger=True,
    )
    app.babelwire_settings = settings  # type: ignore[attr-defined]

    @signals.worker_init.connect(weak=False)
    def _bind_task_context(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        prefork = _is_prefork(sender.pool_cls)
        threads = settings.threads
        if not threads and prefork:
            # CTranslate2 threads per pool process, so that processes × threads = cores
            threads = max(1, (os.cpu_count() or 1) // _pool_size(sender.concurrency))
        process_settings = settings.model_copy(update={"threads": threads})
        if settings.batch_articles > 1 and (prefork or _pool_size(sender.concurrency) < settings.batch_articles):
            # a prefork process or a thread runs one task at a time: batches form only
            # from as many concurrent tasks as one process has threads
            log.warning("BABELWIRE_BATCH_ARTICLES=%d wants `-P threads` with concurrency >= %d "
                        "(this worker: %s, concurrency %s): batches stay smaller",
                        settings.batch_articles, settings.batch_articles,
                        "prefork" if prefork else sender.pool_cls, sender.concurrency)
        ArticleTask.bind_context(
            lambda: build_task_context(process_settings),
            store_factory=lambda: _open_store(process_settings),
        )
        if not prefork:
            # solo / threads: tasks run in this process; load the models before consuming
            _warm_up()
        else:
            _share_with_pool_processes()

    return app


@signals.worker_process_init.connect(weak=False)
def _warm_up_pool_process(**_: Any) -> None:
    """Each prefork pool process loads its models once, at start, before its first task."""
    if ArticleTask.context_factory is not None:
        _warm_up()


def _share_with_pool_processes() -> None:
    """Load what fork can share into the main process before the pool forks: the language
    detector (≈75 MB of tables) then exists once, in pages the pool processes share, instead
    of once per process. `gc.freeze()` keeps the collector from writing to those objects'
    headers, which would copy their pages into every process. (CTranslate2 models cannot be
    shared this way: their threads do not survive a fork; each pool process loads its own.)"""
    import gc

    from pipeline.detect import warm_up as load_detector

    try:
        load_detector()
    except Exception:
        log.exception("could not load the language detector; each pool process loads its own")
        return
    gc.collect()
    gc.freeze()


def _warm_up() -> None:
    # A failure here must not kill the process (prefork would respawn it in a loop): the
    # first task tries again and, if it still fails, retries its message with backoff.
    try:
        ArticleTask.warm_up()
    except Exception:
        log.exception("warm-up failed (store or models); tasks will retry")


def _pool_size(concurrency: Any) -> int:
    try:
        return max(1, int(concurrency))
    except (TypeError, ValueError):  # None or "auto"
        return os.cpu_count() or 1


def _is_prefork(pool_cls: Any) -> bool:
    from celery import concurrency
    from celery.concurrency.prefork import TaskPool as PreforkPool

    cls = concurrency.get_implementation(pool_cls) if isinstance(pool_cls, str) else pool_cls
    return isinstance(cls, type) and issubclass(cls, PreforkPool)


def _open_store(settings: Settings) -> Any:
    from worker.store import Store

    return Store(settings.database_url)


def build_task_context(settings: Settings) -> TaskContext:
    """Open the store and the engines for this process and load the models."""
    from pipeline.process import ProcessOptions
    from worker.runtime import build_engines
    from worker.store import TRANSIENT_DB_ERRORS, StoreCorrections, StoreGlossaries

    started = time.perf_counter()
    store = _open_store(settings)
    engines = build_engines(settings)
    # the newsroom's glossaries and editors' corrections, loaded now (as the models are), then
    # picked up again while the worker runs
    glossaries, corrections = StoreGlossaries(store), StoreCorrections(store)
    glossaries.refresh()
    corrections.refresh()
    warm_up = getattr(engines, "warm_up", None)
    if callable(warm_up):
        warm_up()
    log.info(
        "pid %d ready in %.1f s (models from %s, CTranslate2 threads %s)",
        os.getpid(), time.perf_counter() - started, settings.models_dir, settings.threads or "auto",
    )
    return TaskContext(
        store=store,
        engines=engines,
        limits=settings.limits,
        transient_errors=BROKER_TRANSIENT_ERRORS + TRANSIENT_DB_ERRORS,
        options=ProcessOptions(glossaries=glossaries, corrections=corrections),
        batch=BatchOptions(settings.batch_articles, settings.batch_window_ms / 1000),
        retry_max_delay_s=RETRY_MAX_DELAY_S,
        store_wait_s=store_wait(settings),
        on_article=_log_article_id,
    )


def _log_article_id(article_key: str) -> None:
    """The task's log lines carry its article's id from the moment the article validates
    (the binding ends with the task: the telemetry resets the context after each task)."""
    from worker import logging as json_logs

    json_logs.bind_context(article_id=article_key)


STORE_WAIT_CAP_S = 120


def store_wait(settings: Settings) -> float:
    """How long a task waits in place for an unreachable store: half the soft time limit (the
    article must still have time to run once the store is back), at most 2 minutes (past that
    the broker's retries with their growing delays take over)."""
    return min(STORE_WAIT_CAP_S, settings.task_soft_time_limit / 2)


def send_article(app: Celery, article: dict[str, Any], queue: str = LIVE, task_id: str | None = None, **options: Any) -> Any:
    """Publish one article message, exactly as a news site would (README "Running the service")."""
    return app.send_task(TASK_NAME, kwargs={"article": article}, queue=queue, task_id=task_id, **options)


def __getattr__(name: str) -> Any:
    """`worker.celery_app.app`, for `celery -A worker.celery_app ...` (inspect, Flower, events).

    Built on first access, not at import, so that importing this module never fails on
    settings (the CLI reports a bad setting as a configuration error, exit 2)."""
    if name == "app":
        from worker import metrics as telemetry

        globals()["app"] = created = create_app()
        telemetry.install()  # a worker started as `celery -A worker.celery_app worker` reports too
        return created
    raise AttributeError(name)
