"""Prometheus metrics (every name starts with `babelwire_`) and the worker's telemetry hooks.

Two exporters:
- the API's `/metrics` (`api_registry`): its HTTP requests and submissions, plus figures read
  at scrape time — jobs by status from the SQL store, queue depth from Redis;
- each worker's own port (`BABELWIRE_METRICS_PORT`, 0 = off), served by the worker's main
  process with prometheus_client's multiprocess collector: prefork pool processes write their
  figures to files under `PROMETHEUS_MULTIPROC_DIR` (a fresh temporary folder when unset;
  one folder per worker) and the main process adds them up at scrape time. Queue depth is
  exported there too, so a fleet without the API can still be autoscaled on it.

Worker figures are taken in Celery signals, connected by `install()` (called by
`babelwire worker` before the pool starts; importing this module connects nothing):
`task_postrun` counts the article by status, observes its stage timings (read back
from the job row, the one place they are written) and brings the model counters up to date
from the engines' cache statistics (`models.loader.ModelStats`: loads, load time, tokens in
and out); the same signals bind the job and article to every log line of the task
(`worker.logging`), and Celery's logging setup gets the JSON formatter.

Metrics (for Grafana; `_total`, `_bucket/_sum/_count` suffixes as Prometheus adds them):

| name | type | labels | where | meaning |
|---|---|---|---|---|
| babelwire_articles_total | counter | status, queue | worker | task deliveries finished: done, partial, failed, dropped (malformed message), duplicate (skipped) |
| babelwire_article_seconds | histogram | queue | worker | wall time of one article's task |
| babelwire_stage_seconds | histogram | stage | worker | per-article stage latency: clean, detect, segment, summarize, translate |
| babelwire_model_input_tokens_total | counter | model | worker | source tokens sent to a CTranslate2 model (translation and summarization) |
| babelwire_model_output_tokens_total | counter | model | worker | tokens the model generated |
| babelwire_model_loads_total | counter | model | worker | model loads (warm-up, reload after eviction) |
| babelwire_model_load_seconds | histogram | model | worker | time to load a model |
| babelwire_model_loaded_bytes | gauge | model | worker | loaded model size, summed over live pool processes |
| babelwire_task_retries_total | counter | queue | worker | retries after a transient broker/database fault |
| babelwire_check_failures_total | counter | check, pair | worker | failed fidelity checks of finished articles (pipeline/checks.py: number, term, keep, untranslated, duplicated, missing) by source-target pair, e.g. `en-de` |
| babelwire_queue_depth | gauge | queue | API, worker | messages waiting in `live` / `bulk` (Redis LLEN at scrape) |
| babelwire_broker_up | gauge | — | API, worker | 1 if Redis answered the scrape |
| babelwire_jobs | gauge | status | API | jobs in the store by status (queued, running, done, partial, failed) |
| babelwire_database_up | gauge | — | API | 1 if the store answered the scrape |
| babelwire_http_requests_total | counter | method, route, code | API | requests by route template and status code (an unknown method or path: `other`) |
| babelwire_http_request_seconds | histogram | method, route | API | request latency |
| babelwire_api_articles_total | counter | outcome | API | submitted articles: accepted, duplicate, rejected (invalid items) |
| babelwire_webhook_deliveries | gauge | state | API | webhook and result-queue deliveries in the outbox by outcome: pending, delivered, dead |
| babelwire_webhook_oldest_undelivered_seconds | gauge | — | API | age of the oldest event with a pending delivery (0: none) |
| babelwire_webhook_attempts_total | counter | outcome | dispatcher (`webhooks dispatch --metrics-port`) | delivery attempts: delivered, failed (due again), dead |

Queue depth is exported by every worker and the API: aggregate it with max(), not sum().
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from celery import signals

from worker import logging as json_logs
from worker.queues import QUEUES, message_queue

log = logging.getLogger(__name__)

QUEUE_NAMES = QUEUES
STAGES = ("clean", "detect", "segment", "summarize", "translate")
# seconds; a stage of a news article takes milliseconds to minutes
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# --- metric sets -----------------------------------------------------------------------------


@dataclass
class WorkerMetrics:
    """What worker processes record (multiprocess-safe: counters, histograms, livesum gauges)."""

    articles: Any
    article_seconds: Any
    stage_seconds: Any
    input_tokens: Any
    output_tokens: Any
    model_loads: Any
    model_load_seconds: Any
    model_loaded_bytes: Any
    retries: Any
    batches: Any
    batched_articles: Any
    check_failures: Any

    @classmethod
    def create(cls, registry: Any) -> "WorkerMetrics":
        from prometheus_client import Counter, Gauge, Histogram

        return cls(
            articles=Counter(
                "babelwire_articles", "Articles (task deliveries) finished by a worker, by outcome",
                ["status", "queue"], registry=registry,
            ),
            article_seconds=Histogram(
                "babelwire_article_seconds", "Wall time of one article's task in the worker",
                ["queue"], buckets=LATENCY_BUCKETS, registry=registry,
            ),
            stage_seconds=Histogram(
                "babelwire_stage_seconds", "Pipeline stage latency per article (Result.timings_ms)",
                ["stage"], buckets=LATENCY_BUCKETS, registry=registry,
            ),
            input_tokens=Counter(
                "babelwire_model_input_tokens", "Source tokens sent to a model (translate_batch)",
                ["model"], registry=registry,
            ),
            output_tokens=Counter(
                "babelwire_model_output_tokens", "Tokens a model generated (best hypotheses)",
                ["model"], registry=registry,
            ),
            model_loads=Counter(
                "babelwire_model_loads", "Times a model was loaded into a worker process",
                ["model"], registry=registry,
            ),
            model_load_seconds=Histogram(
                "babelwire_model_load_seconds", "Time to load a CTranslate2 model",
                ["model"], buckets=LOAD_BUCKETS, registry=registry,
            ),
            model_loaded_bytes=Gauge(
                "babelwire_model_loaded_bytes", "Size of the loaded models (model files), summed over live worker processes",
                ["model"], registry=registry, multiprocess_mode="livesum",
            ),
            retries=Counter(
                "babelwire_task_retries", "Task retries after a transient fault (broker or database)",
                ["queue"], registry=registry,
            ),
            batches=Counter(
                "babelwire_article_batches", "Cross-article batches run (BABELWIRE_BATCH_ARTICLES > 1)",
                registry=registry,
            ),
            batched_articles=Counter(
                "babelwire_batched_articles", "Articles processed in those batches (÷ batches = mean batch size)",
                registry=registry,
            ),
            check_failures=Counter(
                "babelwire_check_failures", "Failed fidelity checks of finished articles, by check and language pair",
                ["check", "pair"], registry=registry,
            ),
        )


@dataclass
class ApiMetrics:
    requests: Any
    request_seconds: Any
    submitted: Any

    @classmethod
    def create(cls, registry: Any) -> "ApiMetrics":
        from prometheus_client import Counter, Histogram

        return cls(
            requests=Counter(
                "babelwire_http_requests", "HTTP requests to the API", ["method", "route", "code"], registry=registry,
            ),
            request_seconds=Histogram(
                "babelwire_http_request_seconds", "HTTP request latency of the API", ["method", "route"],
                buckets=HTTP_BUCKETS, registry=registry,
            ),
            submitted=Counter(
                "babelwire_api_articles", "Articles submitted through the API, by outcome (accepted, duplicate, rejected)",
                ["outcome"], registry=registry,
            ),
        )


# --- figures read at scrape time ---------------------------------------------------------------


class QueueDepthCollector:
    """`babelwire_queue_depth{queue}` (Redis LLEN of each queue's list) and `babelwire_broker_up`."""

    def __init__(self, redis_client: Any, queues: Iterable[str] = QUEUE_NAMES):
        self.redis = redis_client
        self.queues = tuple(queues)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("babelwire_broker_up", "1 if the broker (Redis) answered this scrape")
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                lengths = pipe.execute()
        except Exception as exc:  # a scrape must not fail because Redis is down
            log.warning("queue depth: broker unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        depth = GaugeMetricFamily("babelwire_queue_depth", "Messages waiting in a queue", labels=["queue"])
        for queue, length in zip(self.queues, lengths):
            depth.add_metric([queue], int(length))
        up.add_metric([], 1)
        yield depth
        yield up


class JobCountsCollector:
    """`babelwire_jobs{status}` (jobs in the store by status) and `babelwire_database_up`."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]):
        self.counts = counts

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("babelwire_database_up", "1 if the SQL store answered this scrape")
        try:
            counts = self.counts()
        except Exception as exc:
            log.warning("job counts: database unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        jobs = GaugeMetricFamily("babelwire_jobs", "Jobs in the store by status", labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        up.add_metric([], 1)
        yield jobs
        yield up


class DeliveryCollector:
    """`babelwire_webhook_deliveries{state}` and `babelwire_webhook_oldest_undelivered_seconds`,
    read from the webhook outbox at scrape time (`worker.delivery.outbox.Outbox.stats`)."""

    def __init__(self, stats: Callable[[], Any]):
        self.stats = stats

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            stats = self.stats()
        except Exception as exc:  # babelwire_database_up says so
            log.warning("webhook deliveries: database unreachable: %s", exc)
            return
        deliveries = GaugeMetricFamily("babelwire_webhook_deliveries", "Webhook deliveries by outcome",
                                       labels=["state"])
        for state, n in stats.by_state.items():
            deliveries.add_metric([state], n)
        yield deliveries
        yield GaugeMetricFamily("babelwire_webhook_oldest_undelivered_seconds",
                                "Age of the oldest event not yet delivered", value=stats.oldest_pending_s)


def api_registry(redis_client: Any, job_counts: Callable[[], Mapping[str, int]],
                 delivery_stats: Callable[[], Any] | None = None) -> tuple[Any, ApiMetrics]:
    """The API's registry (its own, not prometheus_client's global one) and its metrics."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    metrics = ApiMetrics.create(registry)
    registry.register(QueueDepthCollector(redis_client))
    registry.register(JobCountsCollector(job_counts))
    if delivery_stats is not None:
        registry.register(DeliveryCollector(delivery_stats))
    return registry, metrics


# --- model statistics → metrics ---------------------------------------------------------------


@dataclass
class ModelStatsTracker:
    """Turns the engines' cumulative per-model statistics into metric increments.

    `models.loader.ModelCache.load_stats()` counts since the process started; each `sync`
    adds what changed since the previous one. One tracker per process (after a fork the
    child starts from nothing: it has loaded nothing yet)."""

    metrics: WorkerMetrics
    pid: int = field(default_factory=os.getpid)
    seen: dict[str, Any] = field(default_factory=dict)
    loaded_models: set[str] = field(default_factory=set)
    seen_batches: tuple[int, int] = (0, 0)  # (batches, articles) already counted
    lock: threading.Lock = field(default_factory=threading.Lock)  # the threads pool syncs from each thread

    def sync(self, engines: Any, batch_stats: Any = None) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.seen, self.loaded_models, self.seen_batches = os.getpid(), {}, set(), (0, 0)
            if batch_stats is not None:
                self._sync_batches(batch_stats)
            self._sync_models(engines)

    def _sync_batches(self, stats: Any) -> None:
        batches, articles = stats.batches, stats.articles
        if batches > self.seen_batches[0]:
            self.metrics.batches.inc(batches - self.seen_batches[0])
            self.metrics.batched_articles.inc(articles - self.seen_batches[1])
            self.seen_batches = (batches, articles)

    def _sync_models(self, engines: Any) -> None:
        load_stats = getattr(engines, "load_stats", None)
        if not callable(load_stats):
            return  # engines that are not models.engines.ModelEngines keep no statistics
        for name, now in load_stats().items():
            before = self.seen.get(name)
            loads = now.loads - (before.loads if before else 0)
            if loads > 0:
                self.metrics.model_loads.labels(name).inc(loads)
                seconds = now.total_load_seconds - (before.total_load_seconds if before else 0.0)
                for _ in range(loads):
                    self.metrics.model_load_seconds.labels(name).observe(seconds / loads)
            tokens_in = now.input_tokens - (before.input_tokens if before else 0)
            tokens_out = now.output_tokens - (before.output_tokens if before else 0)
            if tokens_in > 0:
                self.metrics.input_tokens.labels(name).inc(tokens_in)
            if tokens_out > 0:
                self.metrics.output_tokens.labels(name).inc(tokens_out)
            self.seen[name] = now
        cache = getattr(engines, "cache", None)
        store = getattr(engines, "store", None)
        if cache is None or store is None:
            return
        loaded = set(cache.loaded())
        for name in loaded:
            self.metrics.model_loaded_bytes.labels(name).set(store.size_bytes(name))
        for name in self.loaded_models - loaded:  # evicted since the last sync
            self.metrics.model_loaded_bytes.labels(name).set(0)
        self.loaded_models = loaded


# --- the worker's side: Celery signals -------------------------------------------------------


@dataclass
class WorkerTelemetry:
    """Per worker: its metrics (when exported) and what each running task bound."""

    metrics: WorkerMetrics | None = None
    tracker: ModelStatsTracker | None = None
    multiproc_dir: Path | None = None
    own_dir: bool = False  # created here, removed at shutdown
    server: Any = None
    running: dict[str, tuple[float, Any]] = field(default_factory=dict)  # task id → (start, log token)


# Celery calls signal handlers with no handle on our objects: this is the one per process.
_telemetry = WorkerTelemetry()


def _app_settings(app: Any) -> Any:
    return getattr(app, "babelwire_settings", None)


def start_worker_exporter(settings: Any, telemetry: WorkerTelemetry) -> None:
    """Multiprocess metrics under PROMETHEUS_MULTIPROC_DIR and an HTTP exporter on
    `settings.metrics_port`, in the worker's main process, before the pool forks."""
    from prometheus_client import CollectorRegistry, start_http_server, values
    from prometheus_client.multiprocess import MultiProcessCollector

    from worker.broker.server import broker_client

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # figures of an earlier run of this worker
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="babelwire-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        telemetry.own_dir = True
    # prometheus_client picks its value class when first imported; metrics created from here
    # on (all of ours) must write to the shared files whatever was imported before.
    values.ValueClass = values.get_value_class()
    telemetry.multiproc_dir = directory
    telemetry.metrics = WorkerMetrics.create(CollectorRegistry())
    telemetry.tracker = ModelStatsTracker(telemetry.metrics)

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    registry.register(
        QueueDepthCollector(broker_client(settings, socket_connect_timeout=2, socket_timeout=2))
    )
    telemetry.server, _thread = start_http_server(settings.metrics_port, addr="0.0.0.0", registry=registry)
    log.info("worker metrics on port %d", settings.metrics_port, extra={"port": settings.metrics_port})


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    settings = _app_settings(getattr(sender, "app", None))
    if settings is None or not settings.metrics_port:
        return
    try:
        start_worker_exporter(settings, _telemetry)
    except OSError as exc:  # port taken: run without metrics rather than not at all
        log.error("worker metrics: cannot serve on port %d: %s", settings.metrics_port, exc)


def _on_worker_shutdown(**_: Any) -> None:
    if _telemetry.server is not None:
        _telemetry.server.shutdown()
        _telemetry.server = None
    if _telemetry.own_dir and _telemetry.multiproc_dir is not None:
        shutil.rmtree(_telemetry.multiproc_dir, ignore_errors=True)


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if _telemetry.multiproc_dir is not None:
        from prometheus_client import multiprocess

        # drop this process's live gauges (loaded model bytes) from the sums
        multiprocess.mark_process_dead(pid or os.getpid(), path=str(_telemetry.multiproc_dir))


def _json_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    from celery import current_app

    if logger is not None:
        json_logs.use_json_format(logger, json_logs.secrets_of(_app_settings(current_app) or object()))


def _task_context(task: Any) -> Any:
    """The running process's `tasks.process.TaskContext`, if it has one (never builds one)."""
    return getattr(type(task), "_context", None) if task is not None else None


def _on_task_prerun(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    queue = message_queue(getattr(task.request, "delivery_info", None) if task else None)
    token = json_logs.bind_context(job_id=task_id, queue=queue)  # the task adds article_id once it validates
    _telemetry.running[task_id] = (time.perf_counter(), token)


def _on_task_postrun(
    task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    started, token = _telemetry.running.pop(task_id or "", (None, None))
    try:
        _record_task(task, retval, state, started)
    except Exception:  # telemetry never fails a task
        log.exception("recording metrics for task %s failed", task_id)
    finally:
        if token is not None:
            json_logs.unbind_context(token)


def _record_task(task: Any, retval: Any, state: str | None, started: float | None) -> None:
    queue = message_queue(getattr(task.request, "delivery_info", None) if task else None)
    seconds = time.perf_counter() - started if started is not None else None
    if state == "RETRY" or not isinstance(retval, dict):
        return  # a retry is counted by task_retry; an exception by Celery's own log line
    status = "duplicate" if retval.get("skipped") else str(retval.get("status"))
    context = _task_context(task)
    timings = retval.get("timings_ms") if isinstance(retval.get("timings_ms"), dict) else {}
    extra: dict[str, Any] = {"status": status, "stage": "task"}
    if seconds is not None:
        extra["duration_ms"] = round(seconds * 1000)
    if retval.get("article_id"):
        extra.update(job_id=retval.get("job_id"), article_id=retval["article_id"], timings_ms=dict(timings),
                     models=dict(retval.get("models") or {}))
    log.info("article %s", status, extra=extra)

    metrics = _telemetry.metrics
    if metrics is None:
        return
    metrics.articles.labels(status, queue).inc()
    count_check_failures(metrics, retval.get("check_failures"))
    if seconds is not None and status != "duplicate":
        metrics.article_seconds.labels(queue).observe(seconds)
    if status != "duplicate":
        for stage, ms in timings.items():
            if stage in STAGES:
                metrics.stage_seconds.labels(stage).observe(ms / 1000)
    if _telemetry.tracker is not None and context is not None:
        _telemetry.tracker.sync(context.engines, context.batcher.stats)


def count_check_failures(metrics: WorkerMetrics, failures: Any) -> None:
    """`{"en-de": {"number": 2}}` (the task's return value) into the failures counter."""
    if not isinstance(failures, dict):
        return
    for pair, by_check in failures.items():
        for check, count in (by_check or {}).items():
            metrics.check_failures.labels(str(check), str(pair)).inc(int(count))


def _on_task_retry(request: Any = None, **_: Any) -> None:
    if _telemetry.metrics is not None:
        queue = message_queue(getattr(request, "delivery_info", None))
        _telemetry.metrics.retries.labels(queue).inc()


# (signal, handler): what `install()` connects
_HANDLERS = (
    (signals.worker_init, _on_worker_init),
    (signals.worker_shutdown, _on_worker_shutdown),
    (signals.worker_process_shutdown, _on_process_shutdown),
    (signals.after_setup_logger, _json_logs),
    (signals.after_setup_task_logger, _json_logs),
    (signals.task_prerun, _on_task_prerun),
    (signals.task_postrun, _on_task_postrun),
    (signals.task_retry, _on_task_retry),
)


def install() -> None:
    """Connect the worker's telemetry (metrics exporter, per-task metrics, JSON logs) to
    Celery's signals. Called once by whoever starts a worker (`babelwire worker`), before
    the pool forks; importing this module connects nothing. Idempotent."""
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=f"babelwire.telemetry.{handler.__name__}.{id(signal)}")


def uninstall() -> None:
    for signal, handler in _HANDLERS:
        signal.disconnect(handler, dispatch_uid=f"babelwire.telemetry.{handler.__name__}.{id(signal)}")
