"""kombu's Redis transport, guarded: atomic claims, a dead-letter list, no fatal item.

Changes to kombu's Redis channel (5.7; the names we rely on are checked by `hooks.py`):

- Messages are claimed atomically (`claim.CLAIM_SCRIPT`) instead of with BRPOP, so a worker
  that dies at any moment loses no message. A script cannot block; when a claim finds every
  queue empty, the worker blocks instead on `BLMOVE q q RIGHT LEFT` over its first queue
  (live): that moves an arriving message from the list's tail to its head, the same list,
  so nothing leaves the queue, and it wakes the worker at once to claim it. The other
  queues are claimed from when that wait times out (`brpop_timeout`, 1 s). Redis ≥ 6.2.
- Every item taken from a queue or the unacked hash is decoded with bounded nesting and
  checked (`envelope.py`) before kombu or Celery sees it. kombu decodes outside Celery's error
  handling, in the worker's main process, so one stray item used to stop the worker — and
  one recorded as unacked stopped every worker that started afterwards, at its first
  restore sweep. A refused item is logged (reason and size, never its body) and moved to the
  dead-letter list (`dead_letter.py`) together with its unacked record: never fatal, never
  seen again.
- A well-formed envelope that still breaks Celery's handling is rejected, not requeued.
"""

from __future__ import annotations

import logging
import time
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from tasks.process import TASK_NAME
from worker.broker import dead_letter
from worker.broker.claim import CLAIM_SCRIPT, parse_reply
from worker.broker.envelope import (
    MAX_DEPTH,
    MAX_TASK_ID_CHARS,
    EnvelopePolicy,
    decode_item,
    decode_unacked,
    task_message_problem,
)
from worker.broker.exceptions import RefusedItem, ReplicationLag
from worker.broker.lease import LeaseKeeper
from worker.queues import QUEUES

log = logging.getLogger(__name__)


def _task_id(message: Any) -> str | None:
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id[:MAX_TASK_ID_CHARS] if isinstance(task_id, str) else None


class GuardedQoS(kombu_redis.QoS):
    """kombu's QoS with leases (`lease.py`) and a restore that refuses what it cannot restore."""

    channel: "GuardedRedisChannel"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leases = LeaseKeeper(self, self.channel.lease_renew_interval())

    def append(self, message: Any, delivery_tag: Any) -> None:
        super().append(message, delivery_tag)
        self.leases.ensure_running()

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """kombu's restore (back onto its queue, out of the unacked hash and index, in one
        transaction), except that a record that is not a task message of one of our queues
        goes to the dead-letter list instead of being decoded by kombu (RecursionError at
        start-up for a deep one) or pushed wherever its routing key points."""
        channel = self.channel
        refused: list[tuple[dead_letter.DeadLetter, bytes]] = []

        def restore_transaction(pipe: Any) -> None:
            refused.clear()
            raw = pipe.hget(self.unacked_key, tag)
            record = None
            if raw:
                try:
                    record = decode_unacked(raw, MAX_DEPTH)
                    if record[2] not in QUEUES or record[1] not in ("", record[2]):
                        raise RefusedItem("unacked record names no task queue")
                except RefusedItem as exc:
                    queue = record[2] if record is not None else ""
                    record = None
                    refused.append((dead_letter.DeadLetter("unacked", queue, exc.reason, time.time()), raw))
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if record is not None:
                message, _, queue = record
                channel._do_restore_message(message, "", queue, pipe, leftmost)
            for letter, item in refused:
                dead_letter.push(pipe, channel.dead_letter_keys(), letter, item, channel.dead_letter_max, None)

        with channel.conn_or_acquire(client) as connection:
            connection.transaction(restore_transaction, self.unacked_key)
        for letter, item in refused:
            dead_letter.log_refused(letter, len(item))

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        """The sweep that hands out messages of lost workers. It runs at start-up too, where
        an exception stops the worker: anything but a connection error is logged instead."""
        try:
            return super().restore_visible(*args, **kwargs)
        except self.channel.connection_errors:
            raise
        except Exception as exc:
            log.error("restore sweep failed (%s: %s); it runs again", type(exc).__name__, str(exc)[:200])
            return None

    def restore_unacked_once(self, stderr: Any = None) -> Any:
        """At channel close kombu puts the messages the worker holds back on their queues. When
        the channel closes because Redis went away, kombu (5.7) fails here with an
        AttributeError on the connection it has already torn down, which Celery does not
        expect: the worker exits ("Unrecoverable error") instead of reconnecting. Nothing is
        lost by going on: the messages stay in Redis's unacked hash and are handed out again
        when their lease lapses (tests/test_faults_broker_restart.py)."""
        self.leases.stop()  # what is not put back here is handed out when its lease lapses
        try:
            return super().restore_unacked_once(stderr)
        except Exception as exc:
            log.warning("could not put back %d unacknowledged message(s) at channel close (%s: %s); "
                        "Redis hands them out again when their lease lapses",
                        len(self._delivered), type(exc).__name__, str(exc)[:200])
            return None


class GuardedChannelMixin:
    """The guarded parts of the channel (mixed into kombu's Redis and Sentinel channels)."""

    QoS = GuardedQoS
    from_transport_options = kombu_redis.Channel.from_transport_options + (
        "dead_letter_key", "dead_letter_max", "max_eta_s", "lease_renew_s",
        "publish_wait_replicas", "publish_wait_timeout_ms",
    )
    dead_letter_key = dead_letter.DEAD_LETTER_KEY
    dead_letter_max = dead_letter.DEAD_LETTER_MAX
    max_eta_s: float = 0.0
    lease_renew_s: float = 0.0  # 0: a sixth of the visibility timeout
    _queues_were_empty = False  # the last claim found nothing: wait before the next one
    _command = "EVAL"  # what the connection's reply will answer

    # provided by kombu's channel
    client: Any
    global_keyprefix: str
    sep: str
    unacked_key: str
    unacked_index_key: str
    connection: Any
    connection_errors: Any
    qos: GuardedQoS

    @property
    def envelope_policy(self) -> EnvelopePolicy:
        return EnvelopePolicy(task_names=frozenset({TASK_NAME}), max_eta_s=float(self.max_eta_s))

    def lease_renew_interval(self) -> float:
        return float(self.lease_renew_s) or self.visibility_timeout / 6  # type: ignore[attr-defined]

    def dead_letter_keys(self) -> tuple[str, str, str]:
        prefix = self.global_keyprefix or ""
        return (prefix + self.dead_letter_key, prefix + self.unacked_key, prefix + self.unacked_index_key)

    def _brpop_start(self, timeout: Any = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))  # type: ignore[attr-defined]
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]  # type: ignore[attr-defined]
        routing_keys = [key.rsplit(self.sep, 1)[0] for key in keys]
        keys += [self.unacked_key, self.unacked_index_key, self.dead_letter_key]
        if self.global_keyprefix:
            keys = [self.global_keyprefix + key for key in keys]
        if self._queues_were_empty:
            self._queues_were_empty = False
            first = keys[0]
            command: tuple[Any, ...] = ("BLMOVE", first, first, "RIGHT", "LEFT", timeout or self.brpop_timeout)  # type: ignore[attr-defined]
        else:
            command = ("EVAL", CLAIM_SCRIPT, len(keys), *keys, repr(time.time()), MAX_DEPTH,
                       self.dead_letter_max, *routing_keys)
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
            claim = parse_reply(reply)
            key = claim.key[len(self.global_keyprefix):] if self.global_keyprefix else claim.key
            queue = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)  # type: ignore[attr-defined]
            if not claim.claimed:  # the script moved it to the dead-letter list
                dead_letter.log_refused(dead_letter.DeadLetter("queue", queue, claim.tag, time.time()), claim.size)
                return True
            message = self._accept(claim.item, queue, tag=claim.tag)
            if message is not None:
                self.connection._deliver(message, queue)
                self._forget_unheld(claim.tag)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()  # type: ignore[attr-defined]

    def _forget_unheld(self, tag: str) -> None:
        """The script recorded the message as unacked; a consumer that does not ack (no_ack:
        Celery's remote-control replies) never holds it, so remove the record, or it would come
        back every time its lease lapsed. (Delivered and already acked, as under the solo pool,
        the record is gone and this is a no-op.)"""
        if tag not in self.qos._delivered:
            self.qos._remove_from_indices(tag).execute()

    def _accept(self, item: bytes, queue: str, tag: str | None) -> dict[str, Any] | None:
        """The envelope of a claimed item, or None after moving a refused one (and its
        unacked record, `tag`) to the dead-letter list."""
        message = None
        try:
            message = decode_item(item, MAX_DEPTH)
            problem = task_message_problem(message, self.envelope_policy) if queue in QUEUES else None
            if problem is not None:
                raise RefusedItem(problem)
            return message
        except RefusedItem as exc:
            self.dead_letter(item, exc.reason, "queue", queue, tag, task_id=_task_id(message))
            return None

    def dead_letter(self, item: bytes, reason: str, source: str, queue: str, tag: str | None,
                    task_id: str | None = None) -> None:
        letter = dead_letter.DeadLetter(source, queue, reason, time.time())
        with self.conn_or_acquire() as client:  # type: ignore[attr-defined]
            dead_letter.push(client, self.dead_letter_keys(), letter, item, self.dead_letter_max, tag)
        dead_letter.log_refused(letter, len(item), task_id)

    # Replication to replicas is asynchronous: a write the master acknowledged is lost if it
    # dies before passing it on. With N > 0 a publish returns only once N replicas have it
    # (`WAIT`), and fails (ReplicationLag) otherwise, so a message its submitter was told is
    # queued survives a failover.
    publish_wait_replicas = 0
    publish_wait_timeout_ms = 1000

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        replicas = int(self.publish_wait_replicas)
        if not replicas or "_publish_batch" in kwargs:
            return super()._put(queue, message, **kwargs)
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        with self.conn_or_acquire() as client:
            with client.pipeline(transaction=False) as pipe:  # one connection: WAIT covers the LPUSH
                pipe.lpush(key, dumps(message))
                pipe.execute_command("WAIT", replicas, int(self.publish_wait_timeout_ms))
                _, acknowledged = pipe.execute()
        if int(acknowledged) < replicas:
            raise ReplicationLag(f"a publish to {queue} reached {acknowledged} of {replicas} replica(s) "
                                 f"within {self.publish_wait_timeout_ms} ms; it may be lost in a failover")

    def _get(self, queue: str) -> Any:
        """A single pop (`basic_get`), guarded like the claim (never recorded as unacked)."""
        with self.conn_or_acquire() as client:  # type: ignore[attr-defined]
            for pri in self.priority_steps:  # type: ignore[attr-defined]
                item = client.rpop(self._q_for_pri(queue, pri))  # type: ignore[attr-defined]
                if item:
                    message = self._accept(item, queue, tag=None)
                    if message is None:
                        raise Empty()
                    return message
        raise Empty()

    def _restore(self, message: Any, leftmost: bool = False) -> None:
        """Back onto its queue through the guarded restore (kombu decodes the record itself)."""
        self.qos.restore_by_tag(message.delivery_tag, leftmost=leftmost)

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

        return super().basic_consume(queue, no_ack, guarded, consumer_tag, **kwargs)  # type: ignore[misc]


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


class GuardedRedisChannel(GuardedChannelMixin, kombu_redis.Channel):
    pass


class GuardedSentinelChannel(GuardedChannelMixin, kombu_redis.SentinelChannel):
    """The guarded channel over Redis Sentinel (`sentinel://host:port;sentinel://...` with the
    transport option `master_name`): redis-py asks the sentinels for the current master.

    Replication from master to replica is asynchronous: see `publish_wait_replicas`."""

    from_transport_options = GuardedChannelMixin.from_transport_options + (
        "master_name", "min_other_sentinels", "sentinel_kwargs", "sentinel_fanout_compat",
    )

class GuardedTransportMixin:
    def _deliver(self, message: Any, queue: str) -> None:
        if queue in QUEUES:
            # Where kombu puts the message back if its worker is lost (it restores by exchange
            # and routing key) and the queue its job records: the queue it was taken from, not
            # whatever the message claims (a routing key that is an object breaks the restore).
            properties = message["properties"]
            properties["delivery_info"] = {**properties["delivery_info"], "exchange": "", "routing_key": queue}
        super()._deliver(message, queue)  # type: ignore[misc]


class GuardedRedisTransport(GuardedTransportMixin, kombu_redis.Transport):
    Channel = GuardedRedisChannel


class GuardedSentinelTransport(GuardedTransportMixin, kombu_redis.SentinelTransport):
    Channel = GuardedSentinelChannel


SENTINEL_TRANSPORT = f"{__name__}:GuardedSentinelTransport"
REDIS_TRANSPORT = f"{__name__}:GuardedRedisTransport"


def register_sentinel_scheme() -> None:
    """Make `sentinel://` mean the guarded transport in this process. Needed besides Celery's
    `broker_transport`: on a connection error kombu moves on to the next URL of a `;` list and
    takes the transport from that URL's scheme, which would be kombu's own, unguarded one."""
    TRANSPORT_ALIASES["sentinel"] = SENTINEL_TRANSPORT
