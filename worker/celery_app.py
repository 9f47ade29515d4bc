"""The Celery app: Redis broker, JSON only, at-least-once delivery, live before bulk.

Delivery (SPEC §4): `task_acks_late` (a message is acked after the task ran, not when it was
received), `task_reject_on_worker_lost` (a pool process that dies puts its message back),
`worker_prefetch_multiplier=1` (a worker holds no more messages than it runs), and a Redis
`visibility_timeout` longer than the hard time limit (an unacked message of a worker that
vanished is handed out again, but never one that is still legitimately running). The
store's unique keys make the second delivery harmless.

Live before bulk. Redis has no message priorities, so the choice of queue is the priority:
a worker takes its next message with ONE atomic claim over `live bulk` (a Lua script in
place of kombu's `BRPOP live bulk`, see `CLAIM_SCRIPT`), which pops from the first
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
import ssl
import time
from datetime import datetime
from typing import Any

from queue import Empty

from celery import Celery, signals
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from pipeline.batching import BatchOptions
from tasks.process import BROKER_TRANSIENT_ERRORS, TASK_NAME, ArticleTask, TaskContext
from worker.config import Settings, get_settings
from worker import metrics as _telemetry_signals  # noqa: F401  Celery signals: Prometheus metrics, JSON logs

log = logging.getLogger(__name__)

LIVE, BULK = "live", "bulk"
QUEUES = (LIVE, BULK)  # consumption order = priority order


# What a list item that is not a kombu JSON envelope raises on the way in: a bad JSON, UTF-8
# or base64 decode (ValueError), or a JSON value of the wrong shape. (Not KeyError: kombu counts
# it as a connection error; the envelope's shape is checked before it can be raised.)
ENVELOPE_ERRORS = (ValueError, TypeError, AttributeError, IndexError)


def envelope_problem(message: Any) -> str | None:
    """Why a decoded queue item cannot be a kombu message, or None if it has the right shape."""
    if not isinstance(message, dict):
        return f"a JSON {type(message).__name__}, not an object"
    properties = message.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        return "no properties.delivery_tag"
    if not isinstance(properties.get("delivery_info"), dict):  # kombu reads it with [] (a KeyError)
        return "properties.delivery_info is not an object"
    if not isinstance(message.get("body", ""), str):
        return "body is not a string"
    if not isinstance(message.get("headers") or {}, dict):
        return "headers is not an object"
    return None


MAX_TASK_ID_CHARS = 64  # a task id is the job's id: jobs.id is VARCHAR(64)


def task_message_problem(message: dict[str, Any]) -> str | None:
    """Why a message on a task queue cannot be a babelwire task message, or None.

    Checks the Celery protocol-2 headers that Celery uses after it has reserved a pool slot
    for the message: a wrong `timelimit` there raises outside Celery's error handling and
    the slot is never given back (the worker stops taking work). A message without a `task`
    header would be read as protocol 1 (Celery < 4), which nothing of ours sends."""
    headers = message.get("headers") or {}
    if message.get("content-type") != "application/json":
        # refused before anything is decoded (Celery's own refusal would log the body)
        return f"content type {str(message.get('content-type'))[:80]!r}: JSON only"
    if "compression" in headers:
        # kombu would decompress it in the worker's main process: a small bomb, a dead worker
        return "compressed messages are not accepted"
    if "task" not in headers:
        return "no task header (not a Celery protocol 2 task message)"
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= MAX_TASK_ID_CHARS:
        return f"headers.id must be a string of 1 to {MAX_TASK_ID_CHARS} characters"
    timelimit = headers.get("timelimit")
    if timelimit is not None and not (
        isinstance(timelimit, list) and len(timelimit) == 2 and all(_seconds_or_none(t) for t in timelimit)
    ):
        return "headers.timelimit must be [hard, soft] in seconds (or null each)"
    retries = headers.get("retries")
    if retries is not None and (type(retries) is not int or retries < 0):
        return "headers.retries must be a non-negative integer"
    for name in ("eta", "expires"):
        if headers.get(name) is not None and not _iso_datetime(headers[name]):
            return f"headers.{name} must be an ISO 8601 date and time"
    return None


def _iso_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _seconds_or_none(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and 0 < value < float("inf"))


class GuardedQoS(kombu_redis.QoS):
    def restore_unacked_once(self, stderr: Any = None) -> Any:
        """At channel close kombu puts the messages the worker holds back on their queues. When
        the channel closes because Redis went away, kombu (5.7) fails here with an
        AttributeError on the connection it has already torn down, which Celery does not
        expect: the worker exits ("Unrecoverable error") instead of reconnecting. Nothing is
        lost by going on: the messages stay in Redis's unacked hash and are handed out again
        after the visibility timeout (tests/test_faults_broker_restart.py)."""
        try:
            return super().restore_unacked_once(stderr)
        except Exception as exc:
            log.warning("could not put back %d unacknowledged message(s) at channel close (%s: %s); "
                        "Redis hands them out again after the visibility timeout",
                        len(self._delivered), type(exc).__name__, str(exc)[:200])
            return None


# Pop from the first non-empty queue (priority order) and record the message as unacked, in
# one atomic step. kombu's BRPOP pops first and writes the unacked hash afterwards, from the
# worker: a worker killed (or a warm shutdown that drops a reply still in the socket) between
# the two loses the message for good. Recorded here, it is handed out again after the
# visibility timeout. The record is what kombu's QoS.append writes (message, exchange,
# routing key), with the queue it came from as the routing key; kombu writes it again on
# delivery and removes it on ack. An item that is not a JSON envelope with a delivery tag is
# returned unrecorded (it cannot be acked; the worker drops it).
CLAIM_SCRIPT = """
local unacked, unacked_index = KEYS[#KEYS - 1], KEYS[#KEYS]
for i = 1, #KEYS - 2 do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local ok, message = pcall(cjson.decode, item)
    if ok and type(message) == 'table' and type(message['properties']) == 'table'
        and type(message['properties']['delivery_tag']) == 'string' then
      local tag = message['properties']['delivery_tag']
      redis.call('ZADD', unacked_index, ARGV[1], tag)
      redis.call('HSET', unacked, tag, '[' .. item .. ', "", ' .. cjson.encode(ARGV[i + 1]) .. ']')
    end
    return {KEYS[i], item}
  end
end
return false
"""


class GuardedRedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, with two changes.

    Messages are claimed atomically (`CLAIM_SCRIPT`) instead of with BRPOP, so a worker that
    dies at any moment loses no message. A script cannot block; when a claim finds every
    queue empty, the worker blocks instead on `BLMOVE q q RIGHT LEFT` over its first queue
    (live): that moves an arriving message from the list's tail to its head, the same list,
    so nothing leaves the queue, and it wakes the worker at once to claim it. The other
    queues are claimed from when that wait times out (`brpop_timeout`, 1 s): an idle worker
    sees a live article at once and a bulk one within a second. Redis ≥ 6.2.

    Garbage in a queue's list is logged and dropped: kombu decodes each popped item as a JSON
    envelope outside of Celery's error handling, so one stray `LPUSH live "hello"` would stop
    the worker ("Unrecoverable error"). Nothing that could be processed is lost by dropping it.
    """

    QoS = GuardedQoS
    _queues_were_empty = False  # the last claim found nothing: wait before the next one
    _command = "EVAL"  # what the connection's reply will answer

    def _brpop_start(self, timeout: Any = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        routing_keys = [key.rsplit(self.sep, 1)[0] for key in keys]
        keys += [self.unacked_key, self.unacked_index_key]
        if self.global_keyprefix:
            keys = [self.global_keyprefix + key for key in keys]
        if self._queues_were_empty:
            self._queues_were_empty = False
            first = keys[0]
            command: tuple[Any, ...] = ("BLMOVE", first, first, "RIGHT", "LEFT", timeout or self.brpop_timeout)
        else:
            command = ("EVAL", CLAIM_SCRIPT, len(keys), *keys, repr(time.time()), *routing_keys)
        self._command = command[0]
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> Any:
        try:
            try:
                reply = self.client.parse_response(self.client.connection, self._command, **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next round reconnects
                raise
            if self._command == "BLMOVE":
                raise Empty()  # a message arrived (still in its queue) or the wait timed out: claim next
            if not reply:
                self._queues_were_empty = True
                raise Empty()
            key, item = (bytes_to_str(part) for part in reply)
            if self.global_keyprefix:
                key = key[len(self.global_keyprefix):]
            queue = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            message = None
            try:
                message = loads(item)
                self.connection._deliver(message, queue)
            except ENVELOPE_ERRORS as exc:
                if isinstance(exc, self.connection_errors):
                    raise
                _log_dropped(exc)
            self._forget_if_dropped(message)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _forget_if_dropped(self, message: Any) -> None:
        """The script recorded the message as unacked; if the worker dropped it instead of
        delivering it (not a task message), remove the record, or it would come back after
        every visibility timeout. (Delivered and already acked, as under the solo pool, the
        record is gone and this is a no-op.)"""
        try:
            tag = message["properties"]["delivery_tag"]
        except (TypeError, KeyError, IndexError):
            return  # not an envelope: the script did not record it
        if isinstance(tag, str) and tag not in self.qos._delivered:
            self.qos._remove_from_indices(tag).execute()

    def _get(self, queue: str) -> Any:
        try:
            return super()._get(queue)
        except ENVELOPE_ERRORS as exc:
            if isinstance(exc, self.connection_errors):
                raise
            _log_dropped(exc)
            raise Empty() from None

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        """A well-formed envelope whose content breaks Celery's message handling (a body of
        `null` or `5`: Celery tests `'args' in body` before any of its own error handling) is
        rejected here. Without this, the error escapes with the message already counted as
        delivered: its prefetch slot is never freed and the worker silently stops consuming."""

        def guarded(message: Any) -> Any:
            try:
                return callback(message)
            except Exception as exc:
                # KeyError is a "connection error" to kombu's Redis transport, but raised from
                # handling one message it is about that message; real connection faults propagate.
                if isinstance(exc, self.connection_errors) and not isinstance(exc, KeyError):
                    raise
                _reject_unhandled(message, exc)
                return None

        return super().basic_consume(queue, no_ack, guarded, consumer_tag, **kwargs)


def _log_dropped(exc: BaseException) -> None:
    log.error("dropped an item from a Redis queue that is not a Celery message (%s: %s)",
              type(exc).__name__, str(exc)[:200])


def _reject_unhandled(message: Any, exc: BaseException) -> None:
    """Log (with its task id, never its body) and reject, without requeueing, a message that
    failed in Celery's own handling: delivered again, it would fail again."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    task_id = headers.get("id")
    log.error("rejected message %s (task %r) that Celery could not handle (%s: %s)",
              task_id, headers.get("task"), type(exc).__name__, str(exc)[:200],
              extra={"task_id": task_id if isinstance(task_id, str) else None}, exc_info=True)
    if not message.acknowledged:
        message.reject(requeue=False)


class GuardedRedisTransport(kombu_redis.Transport):
    Channel = GuardedRedisChannel

    def _deliver(self, message: Any, queue: str) -> None:
        problem = envelope_problem(message)
        if problem is not None:
            _log_dropped(ValueError(problem))
            return
        # task queues only: remote-control (pidbox) messages have no task headers
        problem = task_message_problem(message) if queue in QUEUES else None
        if problem is not None:
            task_id = message["headers"].get("id") if isinstance(message.get("headers"), dict) else None
            shown = task_id[:MAX_TASK_ID_CHARS] if isinstance(task_id, str) else None
            log.error("dropped message %s from queue %s: %s", shown, queue, problem, extra={"task_id": shown})
            return
        if queue in QUEUES:
            # Where kombu puts the message back if its worker is lost (it restores by exchange
            # and routing key) and the queue its job records: the queue it was taken from, not
            # whatever the message claims (a routing key that is an object breaks the restore).
            properties = message["properties"]
            properties["delivery_info"] = {**properties["delivery_info"], "exchange": "", "routing_key": queue}
        super()._deliver(message, queue)


REDIS_SCHEMES = ("redis://", "rediss://")
MIN_REDIS_VERSION = (6, 2)  # BLMOVE, which an idle worker waits with


def redis_version_problem(version: str) -> str | None:
    """Why a Redis server of this version cannot be the broker, or None."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None  # not a version we can read (a Redis-compatible server): let it try
    if found < MIN_REDIS_VERSION:
        need = ".".join(map(str, MIN_REDIS_VERSION))
        return f"Redis {version} is too old for the broker: babelwire needs Redis >= {need} (BLMOVE)"
    return None


def redis_server_version(url: str, timeout: float = 2.0) -> str:
    """The version a Redis server reports (raises when it cannot be reached)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return str(client.info("server").get("redis_version", ""))
    finally:
        client.close()


def check_broker_version(broker_url: str, timeout: float = 2.0) -> str | None:
    """The broker's version problem, if it is reachable Redis and too old (an unreachable
    broker is not this check's business: the worker retries connecting)."""
    if not broker_url.startswith(REDIS_SCHEMES):
        return None
    try:
        version = redis_server_version(broker_url, timeout)
    except Exception:
        return None
    return redis_version_problem(version)


def broker_tls(broker_url: str) -> dict[str, Any] | bool:
    """TLS for a `rediss://` broker: the server's certificate is verified. (kombu's own default
    for a bare rediss:// URL is not to verify, which lets anyone in the middle read and write the
    queues.) TLS options in the URL's query string — `ssl_ca_certs=/path/ca.pem`, or an explicit
    `ssl_cert_reqs=none` — take the place of this default, as they come from the environment."""
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED} if broker_url.startswith("rediss://") else False


def visibility_timeout(settings: Settings) -> int:
    """Seconds before Redis hands an unacked message to another worker."""
    return settings.broker_visibility_timeout or 2 * settings.task_time_limit + 60


def retry_max_delay(settings: Settings) -> int:
    """Cap on a retry's countdown: a retried message waits, unacked, in a worker; it must
    run well inside the visibility timeout or Redis would hand out a second copy."""
    return max(1, min(60, visibility_timeout(settings) // 4))


def check_settings(settings: Settings) -> None:
    """Refuse settings that would break the delivery guarantees (a configuration error)."""
    if settings.task_soft_time_limit >= settings.task_time_limit:
        raise ValueError(
            f"BABELWIRE_TASK_SOFT_TIME_LIMIT ({settings.task_soft_time_limit}) must be below "
            f"BABELWIRE_TASK_TIME_LIMIT ({settings.task_time_limit})"
        )
    if visibility_timeout(settings) <= settings.task_time_limit:
        raise ValueError(
            f"BABELWIRE_BROKER_VISIBILITY_TIMEOUT ({settings.broker_visibility_timeout}) must exceed "
            f"BABELWIRE_TASK_TIME_LIMIT ({settings.task_time_limit}), or a running task is delivered twice"
        )


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    check_settings(settings)
    vt = visibility_timeout(settings)
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
        # redis:// and rediss:// get the guarded channel above (other schemes, e.g. sentinel://,
        # are left as they are)
        broker_transport=(
            f"{__name__}:GuardedRedisTransport" if settings.broker_url.startswith(REDIS_SCHEMES) else None
        ),
        broker_use_ssl=broker_tls(settings.broker_url),
        broker_transport_options={
            "visibility_timeout": vt,
            "queue_order_strategy": "priority",
            "priority_steps": [0],
            # sweep for messages of lost workers often enough to honour a short timeout
            "unacked_restore_interval": max(1, min(10, vt // 4)),
            "unacked_restore_throttle": 1,
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
    from worker.runtime import build_engines
    from worker.store import TRANSIENT_DB_ERRORS

    started = time.perf_counter()
    store = _open_store(settings)
    engines = build_engines(settings)
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
        batch=BatchOptions(settings.batch_articles, settings.batch_window_ms / 1000),
        retry_max_delay_s=retry_max_delay(settings),
        store_wait_s=store_wait(settings),
    )


STORE_WAIT_CAP_S = 120


def store_wait(settings: Settings) -> float:
    """How long a task waits in place for an unreachable store: half the soft time limit (the
    article must still have time to run once the store is back), at most 2 minutes (past that
    the broker's retries with their growing delays take over)."""
    return min(STORE_WAIT_CAP_S, settings.task_soft_time_limit / 2)


def send_article(app: Celery, article: dict[str, Any], queue: str = LIVE, task_id: str | None = None, **options: Any) -> Any:
    """Publish one article message, exactly as a news site would (SPEC §3.3)."""
    return app.send_task(TASK_NAME, kwargs={"article": article}, queue=queue, task_id=task_id, **options)


def __getattr__(name: str) -> Any:
    """`worker.celery_app.app`, for `celery -A worker.celery_app ...` (inspect, Flower, events).

    Built on first access, not at import, so that importing this module never fails on
    settings (the CLI reports a bad setting as a configuration error, exit 2)."""
    if name == "app":
        globals()["app"] = created = create_app()
        return created
    raise AttributeError(name)
