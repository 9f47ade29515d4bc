"""Test helpers for webhooks: a receiver on 127.0.0.1 and a guard that keeps every test
connection on this machine.

`LoopbackReceiver` is a real HTTP server bound to 127.0.0.1 only. It records each request
(headers and body) and answers with what its `respond` function returns; `down()` closes its
listening socket (connections are refused) and `up()` opens it again on the same port.

`only_loopback_connections` (a fixture in the test modules) patches `socket.socket.connect`
so that any connection to an address other than 127.0.0.1 fails the test instead of leaving
the machine; it records every address connected to.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"ok"


class LoopbackReceiver:
    def __init__(self, respond: Callable[[int, Received], Reply] | None = None, port: int = 0, tls: Any = None):
        self.respond = respond or (lambda n, r: Reply())
        self.tls = tls  # an ssl.SSLContext (server side): serve HTTPS
        self.requests: list[Received] = []
        self.answered: list[tuple[Received, int]] = []  # requests whose answer was sent, with its status
        self.active = 0  # requests being answered now
        self.lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://127.0.0.1:{self.port}"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with receiver.lock:
                    receiver.requests.append(got)
                    receiver.active += 1
                    n = len(receiver.requests)
                try:
                    reply = receiver.respond(n, got)
                    self.send_response(reply.status)
                    for k, v in reply.headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                    with receiver.lock:
                        receiver.answered.append((got, reply.status))
                except OSError:
                    pass  # the client went away (killed) or stopped reading (a capped answer)
                finally:
                    with receiver.lock:
                        receiver.active -= 1

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            request_queue_size = 128  # socketserver's 5 drops connections a dispatcher opens at once

        self._server = _bind(Server, self.port, Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.down()


def _bind(server_class: Any, port: int, handler: Any) -> Any:
    """A server on 127.0.0.1:`port`; for port 0, a free port below the ephemeral range (so that
    no outgoing connection on this busy machine takes it while the receiver is `down()`)."""
    import errno
    import random

    if port:
        for _ in range(50):  # a port just closed can be busy for a moment
            try:
                return server_class(("127.0.0.1", port), handler)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                time.sleep(0.1)
        return server_class(("127.0.0.1", port), handler)
    for _ in range(200):
        try:
            return server_class(("127.0.0.1", random.randint(20_000, 32_000)), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return server_class(("127.0.0.1", 0), handler)


@dataclass
class ConnectionLog:
    addresses: list[str] = field(default_factory=list)


def guard_connections(monkeypatch: Any) -> ConnectionLog:
    """Refuse (and fail on) any connection to an address other than 127.0.0.1."""
    log = ConnectionLog()
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        log.addresses.append(host)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host != "127.0.0.1":
            raise AssertionError(f"a test tried to connect to {address!r}: only 127.0.0.1 is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return log


class StubResolver:
    """Host names → addresses, without DNS; records each lookup."""

    def __init__(self, names: dict[str, list[str]]):
        self.names = names
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host in self.names:
            return list(self.names[host])
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            from worker.delivery.exceptions import ResolveError

            raise ResolveError(f"{host}: not in the stub resolver") from None
        return [host]


class DispatcherProcess:
    """`babelwire webhooks dispatch` in its own process group (SIGKILL takes all of it)."""

    def __init__(self, env: dict[str, str], log_path: Any):
        import subprocess

        from tests.conftest import ROOT, babelwire_command

        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen([*babelwire_command(), "webhooks", "dispatch"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    @property
    def log(self) -> str:
        return open(self.log_path, errors="replace").read()

    def kill(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
