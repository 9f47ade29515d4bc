"""Webhooks end to end: real `babelwire worker`, real `babelwire webhooks dispatch`, real
Redis and SQL store (SQLite and PostgreSQL), and a receiver on 127.0.0.1 that fails first and
then goes away for 30 s; workers and dispatchers are SIGKILLed mid-way."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerFactory
from tests.faults_support import toy_articles, wait_for, write_jsonl
from tests.webhooks_support import DispatcherProcess, LoopbackReceiver, Received, Reply
from worker.delivery.signing import verify
from worker.store import Store

OUTAGE_S = 30
FAILURES = 5


class FlakyReceiver:
    """500 to the first FAILURES requests, then down (connections refused) for OUTAGE_S, then
    200 — each 200 after a short pause, so that deliveries are in flight when a kill comes."""

    def __init__(self) -> None:
        self.outage_over = threading.Event()
        self.server = LoopbackReceiver(self.respond)

    def respond(self, n: int, request: Received) -> Reply:
        if n < FAILURES:
            return Reply(500, body=b"not yet")
        if n == FAILURES:
            threading.Thread(target=self._outage, daemon=True).start()
            return Reply(500, body=b"going down")
        time.sleep(0.2)
        return Reply(200)

    def _outage(self) -> None:
        time.sleep(0.1)  # the 500 in hand goes out first
        self.server.down()
        time.sleep(OUTAGE_S)
        self.server.up()  # the same port (below the ephemeral range: nothing else took it)
        self.outage_over.set()

    def delivered_job_ids(self) -> set[str]:
        with self.server.lock:
            return {json.loads(r.body)["data"]["job_id"] for r, status in self.server.answered if status == 200}


@pytest.mark.slow
@pytest.mark.faults
def test_fifty_articles_reach_a_failing_then_absent_receiver_through_worker_and_dispatcher_kills(
    tmp_path: Path, service_env: dict[str, str], toy_models_dir: Path, workers: WorkerFactory, cli_in_process: Any,
    store: Store,
) -> None:
    n = 50
    receiver = FlakyReceiver()
    env = {**service_env, "BABELWIRE_MODELS_DIR": str(toy_models_dir), "BABELWIRE_TARGETS": "qaa,qab",
           "BABELWIRE_TASK_SOFT_TIME_LIMIT": "10", "BABELWIRE_TASK_TIME_LIMIT": "12",
           "BABELWIRE_BROKER_VISIBILITY_TIMEOUT": "15",
           "BABELWIRE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",  # the receiver is on loopback
           "BABELWIRE_WEBHOOK_RETRY_BASE_S": "0.2", "BABELWIRE_WEBHOOK_RETRY_MAX_S": "2",
           "BABELWIRE_WEBHOOK_CONNECT_TIMEOUT_S": "1", "BABELWIRE_WEBHOOK_READ_TIMEOUT_S": "2",
           "BABELWIRE_WEBHOOK_POLL_S": "0.2"}
    added = cli_in_process(["webhooks", "add", f"{receiver.server.url}/hooks/news",
                            "--events", "article.done,article.partial,article.failed", "--json"], env)
    assert added.returncode == 0, added.stderr
    secret = json.loads(added.stdout)["secret"]
    assert secret.startswith("whsec_")

    dispatchers = [DispatcherProcess(env, tmp_path / "dispatch-1.log")]
    try:
        workers.start(env)
        articles = toy_articles(n, seed=13)
        run = cli_in_process(["enqueue", str(write_jsonl(tmp_path / "fifty.jsonl", articles)), "--queue", "bulk",
                              "--to", "qaa,qab", "--json"], env)
        assert run.returncode == 0, run.stderr
        job_ids = set(json.loads(run.stdout)["job_ids"])
        assert len(job_ids) == n

        def finished() -> int:
            return sum(s in ("done", "partial", "failed") for s in store.statuses(list(job_ids)).values())

        # the worker dies with articles still to do
        wait_for(lambda: finished() >= 10, 120, "10 finished jobs", context=lambda: workers.started[0].log[-3000:])
        at_worker_kill = finished()
        workers.started[0].kill()
        workers.start(env)

        # the dispatcher dies while requests are in flight, after the receiver is back
        def state() -> str:
            return (f"{len(receiver.delivered_job_ids())} of {n} delivered, {len(receiver.server.requests)} requests, "
                    f"{finished()} jobs finished; dispatcher log:\n{dispatchers[-1].log[-3000:]}")

        wait_for(receiver.outage_over.is_set, OUTAGE_S + 60, "the end of the receiver's outage", context=state)
        wait_for(lambda: len(receiver.delivered_job_ids()) >= 5 and receiver.server.active > 0, 60,
                 "deliveries in flight after the outage", interval=0.01, context=state)
        at_dispatcher_kill = len(receiver.delivered_job_ids())
        dispatchers[0].kill()
        dispatchers.append(DispatcherProcess(env, tmp_path / "dispatch-2.log"))

        wait_for(lambda: receiver.delivered_job_ids() == job_ids, 240, "an event for every article", context=state)
    finally:
        for d in dispatchers:
            d.stop()
        receiver.server.close()

    assert at_worker_kill < n and at_dispatcher_kill < n  # both kills came mid-way
    requests = receiver.server.requests
    assert requests[0].path == "/hooks/news"
    bodies_by_id: dict[str, set[bytes]] = {}
    for r in requests:  # every request, retries and duplicates included, is signed
        parsed = verify(secret, r.body, r.headers)
        assert parsed["type"] == "article.done" and parsed["data"]["status"] == "done"
        bodies_by_id.setdefault(r.headers["webhook-id"], set()).add(r.body)
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())  # a retry resends the same event
    events = {json.loads(next(iter(b)))["data"]["job_id"]: i for i, b in bodies_by_id.items()}
    assert set(events) == job_ids and len(bodies_by_id) == n  # one event per article, under one id
    by_external = {a["id"] for a in articles}
    for bodies in bodies_by_id.values():
        data = json.loads(next(iter(bodies)))["data"]
        assert data["external_id"] in by_external
        assert data["result"]["status"] == "done" and set(data["result"]["summary"]) >= {"en", "qaa", "qab"}

    from worker.delivery.outbox import Outbox

    assert Outbox(store).stats().by_state == {"pending": 0, "delivered": n, "dead": 0}
    listed = cli_in_process(["webhooks", "deliveries", "--json", "--limit", "500"], env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == n and {r["state"] for r in rows} == {"delivered"}
    assert max(r["attempts"] for r in rows) > 1  # the 500s and the outage were retried
