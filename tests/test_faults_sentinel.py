"""Redis Sentinel: the broker's master dies mid-batch and a replica takes over.

On loopback, started by the test: a master, a replica and three sentinels (quorum 2, master
declared down after 1 s). The batch is published with `BABELWIRE_BROKER_PUBLISH_REPLICAS=1`
(each publish returns once the replica has it: Redis WAIT), a worker consumes it through
`sentinel://` URLs with the guarded transport, and the master is SIGKILLed while articles
run. What must survive: every published article ends done, stored once. What may happen: a
claim or an ack the master took but had not yet passed to the replica is lost with it
(replication is asynchronous), so the article runs again — a harmless duplicate delivery,
counted and printed. The measured failover time and the duplicates go in the README.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import (
    ServerProcess, all_jobs, distinct_counts, free_port, redis_server_bin, toy_articles, wait_for, write_jsonl,
)
from worker.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(400)]

MASTER_NAME = "babelwire"
N_ARTICLES = 40


@dataclass
class Node(ServerProcess):
    directory: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([redis_server_bin(), *self.args], cwd=self.directory,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5, decode_responses=True)



def data_node(directory: Path, replica_of: int | None = None) -> Node:
    node = Node(directory, [])
    node.args = ["--port", str(node.port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
                 "--appendonly", "yes", "--appendfsync", "everysec", "--logfile", str(directory / "redis.log")]
    if replica_of is not None:
        node.args += ["--replicaof", "127.0.0.1", str(replica_of)]
    return node


def sentinel_node(directory: Path, master_port: int) -> Node:
    node = Node(directory, [])
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "sentinel.conf"  # sentinels rewrite their config: a file of their own
    config.write_text("\n".join([
        f"port {node.port}", "bind 127.0.0.1", f"dir {directory}", f"logfile {directory / 'sentinel.log'}",
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
        f"sentinel failover-timeout {MASTER_NAME} 10000",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
    ]) + "\n")
    node.args = [str(config), "--sentinel"]
    return node


def answers(check: Any) -> bool:
    try:
        return bool(check())
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False


@dataclass
class SentinelCluster:
    master: Node
    replica: Node
    sentinels: list[Node]

    @property
    def broker_url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    def master_port(self) -> int | None:
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
            except (redis.ConnectionError, redis.TimeoutError):
                continue
            if address:
                return int(address[1])
        return None

    def all(self) -> list[Node]:
        return [self.master, self.replica, *self.sentinels]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    master = data_node(tmp_path / "master")
    master.start()
    wait_for(lambda: answers(master.client().ping), 20, "the master")
    replica = data_node(tmp_path / "replica", replica_of=master.port)
    replica.start()
    wait_for(lambda: answers(lambda: replica.client().info("replication").get("master_link_status") == "up"),
             30, "the replica in sync")
    sentinels = [sentinel_node(tmp_path / f"sentinel{i}", master.port) for i in range(3)]
    cluster = SentinelCluster(master, replica, sentinels)
    try:
        for sentinel in sentinels:
            sentinel.start()
        for sentinel in sentinels:  # each knows the replica and the two other sentinels
            client = sentinel.client()
            wait_for(lambda: answers(lambda: client.sentinel_slaves(MASTER_NAME)
                                     and len(client.sentinel_sentinels(MASTER_NAME)) == 2),
                     60, "the sentinels to discover each other and the replica")
        yield cluster
    finally:
        for node in cluster.all():
            node.stop()


def test_the_master_dies_mid_batch_a_replica_takes_over_and_every_published_article_is_done(
    tmp_path: Path, cluster: SentinelCluster, workers: WorkerFactory, toy_models_dir: Path, cli: Any
) -> None:
    database = f"sqlite:///{tmp_path / 'sentinel.db'}"
    store = Store(database)
    try:
        env = {**make_service_env(tmp_path, database, cluster.broker_url),
               "BABELWIRE_BROKER_SENTINEL_MASTER": MASTER_NAME,
               "BABELWIRE_BROKER_PUBLISH_REPLICAS": "1",
               "BABELWIRE_TRANSLATION_MEMORY": "false",  # it would use the broker URL: not a sentinel client
               "BABELWIRE_MODELS_DIR": str(toy_models_dir),
               "BABELWIRE_TASK_SOFT_TIME_LIMIT": "10", "BABELWIRE_TASK_TIME_LIMIT": "12"}
        path = write_jsonl(tmp_path / "batch.jsonl", toy_articles(N_ARTICLES, seed=97, sentences=40))
        run = cli(["enqueue", str(path), "--to", "qaa,qab", "--queue", "bulk", "--json"], env)
        assert run.returncode == 0, run.stderr + run.stdout
        assert cluster.replica.client().llen("bulk") == N_ARTICLES  # WAIT: each publish is on the replica
        worker = workers.start(env, "--pool", "prefork", "--concurrency", "2")
        assert "GuardedSentinelTransport" in worker.log  # Celery's banner names the transport

        done = lambda: sum(j.status == "done" for j in all_jobs(store))  # noqa: E731
        wait_for(lambda: done() >= 8, 120, "the first articles", context=lambda: worker.log[-4000:])
        running_at_kill = sum(j.status == "running" for j in all_jobs(store))
        done_at_kill = done()
        cluster.master.kill()
        killed = time.monotonic()
        wait_for(lambda: cluster.master_port() == cluster.replica.port, 60, "the sentinels to promote the replica")
        promoted_s = time.monotonic() - killed
        wait_for(lambda: done() > done_at_kill, 120, "work on the new master", context=lambda: worker.log[-4000:])
        resumed_s = time.monotonic() - killed
        wait_for(lambda: done() == N_ARTICLES, 240, "every article done",
                 context=lambda: worker.log[-4000:] + str([(j.id, j.status) for j in all_jobs(store)
                                                           if j.status != "done"]))

        jobs = all_jobs(store)
        expected = {"articles": N_ARTICLES, "jobs": N_ARTICLES, "texts": N_ARTICLES * 6}
        assert store.row_counts() == expected and distinct_counts(store) == expected
        again = sorted(j.attempts for j in jobs if j.attempts > 1)
        print(f"\nRESULT sentinel_failover master SIGKILLed with {running_at_kill} article(s) running, "
              f"{done_at_kill} done: replica promoted after {promoted_s:.1f} s, work resumed after "
              f"{resumed_s:.1f} s; {N_ARTICLES} of {N_ARTICLES} done, {len(again)} ran twice {again}")
        assert worker.alive()
        new_master = cluster.replica.client()
        wait_for(lambda: new_master.llen("bulk") == 0 and new_master.hlen("unacked") == 0, 120,
                 "the new master's queue and unacked hash empty")
        # the API's and the metrics' client of the broker follows the failover too
        from worker.broker.server import broker_client
        from worker.config import Settings

        client = broker_client(Settings(broker_url=cluster.broker_url, broker_sentinel_master=MASTER_NAME))
        client.set("probe", "via-sentinel")
        assert new_master.get("probe") == "via-sentinel"
    finally:
        store.close()
        workers.stop_all()


def test_a_publish_that_no_replica_acknowledged_fails_instead_of_reporting_queued(redis_url: str) -> None:
    """BABELWIRE_BROKER_PUBLISH_REPLICAS=1 against a Redis without replicas: WAIT times out, and
    the publisher gets a broker error (an API 503, a CLI error) rather than a message that a
    failover could lose."""
    from kombu.exceptions import OperationalError

    from worker.broker.exceptions import ReplicationLag
    from worker.celery_app import create_app, send_article
    from worker.config import Settings

    app = create_app(Settings(broker_url=redis_url, broker_publish_replicas=1, broker_publish_replica_timeout_ms=100))
    try:
        with pytest.raises(ReplicationLag, match="0 of 1 replica") as raised:
            send_article(app, {"text": "Needs a replica."}, task_id="needs-replica")
        assert isinstance(raised.value, OperationalError)
    finally:
        app.close()
