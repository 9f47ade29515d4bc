"""Leases: a worker keeps renewing its hold on every message it has taken.

kombu's Redis transport hands an unacked message out again once its score in the unacked
index (the time it was taken) is older than the visibility timeout. Without renewal, that
timeout has to exceed the longest task, and a message whose worker died waits that long
(13 minutes at the old defaults). Here a thread of the worker's main process sets the score
of every message the channel holds to "now" every `interval` seconds (`ZADD XX`: a message
acked meanwhile is not written back). So the visibility timeout is a lease (60 s by
default) whatever the task's time limit: a dead worker's messages come back within about
one lease, and a live worker's are never handed out twice however long they run.

A thread rather than an event-loop timer: under the solo pool the loop is blocked while a
task runs, and a busy loop must not delay a renewal. The thread only reads the QoS's
delivered tags and writes to Redis through the channel's connection pool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the messages one channel's QoS holds, while that channel is open."""

    def __init__(self, qos: Any, interval: float):
        self.qos = qos
        self.interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._failing = False

    def ensure_running(self) -> None:
        """Start the renewal thread (idempotent; a forked copy never starts one)."""
        if self._thread is not None or self._stopped.is_set() or os.getpid() != self._pid:
            return
        self._thread = threading.Thread(target=self._run, name="babelwire-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.renew()
            except Exception as exc:  # never let the thread die: the next round tries again
                if not self._failing:
                    log.warning("could not renew message leases (%s: %s); retrying every %.1f s",
                                type(exc).__name__, str(exc)[:200], self.interval)
                self._failing = True
            else:
                if self._failing:
                    log.info("message leases renewed again")
                self._failing = False

    def held_tags(self) -> list[str]:
        """The delivery tags the QoS holds (read from another thread: retried if it changes
        while being copied)."""
        for _ in range(10):
            try:
                return list(self.qos._delivered)
            except RuntimeError:  # changed size during iteration
                continue
        return []

    def renew(self) -> int:
        """Bump every held message's score to now; returns how many were held."""
        tags = self.held_tags()
        if not tags:
            return 0
        now = time.time()
        with self.qos.channel.conn_or_acquire() as client:
            client.zadd(self.qos.unacked_index_key, {tag: now for tag in tags}, xx=True)
        return len(tags)
