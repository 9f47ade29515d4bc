"""The result queue: each event as a Celery task message, for sites whose own Celery workers
consume results (no HTTP).

An endpoint `celery://QUEUE` (`babelwire webhooks add celery://site-results`) gets, for
each event, the task `article.finished` on queue QUEUE of babelwire's broker, with the event
body (the same JSON a webhook carries, parsed) as its one argument and the event id as the
task id — a consumer deduplicates by it, as a webhook receiver does by `webhook-id`:

    app = Celery(broker="redis://...")
    @app.task(name="article.finished")
    def article_finished(event): ...      # event["type"], event["data"]["result"], ...
    # celery -A site worker -Q site-results

The message is JSON (the broker's JSON serializer), like every message babelwire sends.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from worker.delivery.events import RESULT_TASK

PUBLISH_TIMEOUT_S = 10.0


class ResultQueuePublisher:
    """Publishes to the broker with a plain Celery app (as a site would); one per process,
    opened on first use, thread-safe."""

    def __init__(self, broker_url: str):
        self.broker_url = broker_url
        self._app: Any = None
        self._lock = threading.Lock()

    def _celery(self) -> Any:
        with self._lock:
            if self._app is None:
                from celery import Celery

                app = Celery("babelwire-results", broker=self.broker_url, set_as_current=False)
                app.conf.update(
                    task_serializer="json", accept_content=["json"], broker_connection_timeout=PUBLISH_TIMEOUT_S,
                    broker_connection_retry_on_startup=False,
                )
                self._app = app
            return self._app

    def publish(self, queue: str, event_id: str, payload: str) -> None:
        """One message; raises on a broker fault (the dispatcher retries with backoff)."""
        self._celery().send_task(RESULT_TASK, args=[json.loads(payload)], queue=queue, task_id=event_id,
                                 retry=False, ignore_result=True)

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None
