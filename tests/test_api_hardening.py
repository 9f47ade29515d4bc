"""Hostile clients against the real `babelwire api` (uvicorn subprocess, real Redis, SQLite and
PostgreSQL through `database_url`): one publish per job under concurrent submissions, closed
metric labels, deep JSON, odd ids, slow clients, login, ordering within one request, and lists
with invalid items (issue 10 items 3, 6, 8, 9, 10, 13, 14; issue 13 item 5)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import redis

from pipeline.article import validate_article
from tests.api_server import ApiServerFactory, api_servers, scrape  # noqa: F401  (fixture)
from worker.api.middleware import HTTP_METHODS
from worker.config import Settings
from worker.store import Store

TOKEN = "tok-hardening-0123456789"


def live_length(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen("live"))
    finally:
        client.close()


def test_the_same_article_posted_concurrently_is_published_once(
    service_env: dict[str, str], api_servers: ApiServerFactory, redis_url: str
) -> None:
    """Issue 10 item 3: ten parallel POSTs of one article are one job and ONE message."""
    server = api_servers.start(service_env)
    articles = [{"id": f"race-{n}", "text": f"Story number {n} about the harbour. It reopened today."} for n in range(3)]
    barrier = threading.Barrier(10)
    answers: list[list[dict[str, Any]]] = [[] for _ in range(10)]

    def post(slot: int) -> None:
        with server.client() as client:
            barrier.wait()
            for article in articles:
                response = client.post("/v1/articles", json=article)
                assert response.status_code == 202, response.text
                answers[slot].append(response.json()["jobs"][0])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(len(a) == len(articles) for a in answers)
    for i in range(len(articles)):
        jobs = {a[i]["job_id"] for a in answers}
        assert len(jobs) == 1, jobs  # one job per article
        assert sum(not a[i]["duplicate"] for a in answers) == 1  # one submission made it
    assert live_length(redis_url) == len(articles)  # one message per job, not one per POST
    store = Store(service_env["BABELWIRE_DATABASE_URL"])
    try:
        assert store.row_counts()["jobs"] == len(articles)
        rows = [store.job(a[0]["job_id"]) for a in [[x[i] for x in answers] for i in range(len(articles))]]
        assert all(r is not None and r.sent_at is not None and r.attempts == 0 for r in rows)
    finally:
        store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metric_labels_come_from_a_closed_set(service_env: dict[str, str], api_servers: ApiServerFactory) -> None:
    """Issue 10 item 6: made-up methods and paths (no token needed) add no time series."""
    server = api_servers.start({**service_env, "BABELWIRE_API_TOKENS": TOKEN})
    with server.client() as client:
        for n in range(50):
            client.request(f"MADEUP{n}", f"/v1/articles/{n}")
            client.get(f"/no/such/path/{n}")
    samples = scrape(f"{server.url}/metrics")
    methods = {dict(labels)["method"] for (name, labels) in samples if name == "babelwire_http_requests_total"}
    routes = {dict(labels)["route"] for (name, labels) in samples if name == "babelwire_http_requests_total"}
    assert methods <= HTTP_METHODS | {"other"} and "other" in methods, methods
    assert all(not r.startswith("/no/such") for r in routes) and "other" in routes, routes
    series = [k for k in samples if k[0] == "babelwire_http_requests_total"]
    assert len(series) < 10, series  # 100 odd requests: a handful of series, not 100


def test_deep_json_is_a_422_and_odd_ids_are_404s_or_found(
    service_env: dict[str, str], api_servers: ApiServerFactory
) -> None:
    """Issue 10 items 8 and 9: nesting → 422 (not 500); NUL in an id → 404 (PostgreSQL too);
    an external id with `/` can be looked up."""
    server = api_servers.start(service_env)
    with server.client() as client:
        for body in (b"[" * 100_000 + b"]" * 100_000, json.dumps({"text": "Fine.", "x": [[[[[[]]]]]]}).replace(
                "[]", "[" * 5000 + "]" * 5000).encode()):
            deep = client.post("/v1/articles", content=body, headers={"Content-Type": "application/json"})
            assert deep.status_code == 422, deep.text[:300]
            assert "nested deeper" in deep.json()["detail"][0]["msg"]
        for path in ("/v1/jobs/a%00b", "/v1/articles/a%00b", "/articles/a%00b"):
            assert client.get(path).status_code == 404, path
        slashed = client.post("/v1/articles", json={"id": "news/2026/12/budget", "text": "The budget passed. Late."})
        assert slashed.status_code == 202
        found = client.get("/v1/articles/news/2026/12/budget")
        assert found.status_code == 200 and found.json()["external_id"] == "news/2026/12/budget"
        assert client.get("/v1/articles/news/2026/12/other").status_code == 404
    assert "Traceback" not in server.log


def _raw_connection(server_port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server_port), timeout=10)
    sock.settimeout(0.3)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slow_clients_are_cut_off(service_env: dict[str, str], api_servers: ApiServerFactory) -> None:
    """Issue 10 item 10: a client trickling its headers is disconnected after the header
    timeout; a body that does not arrive in time is a 408 (also on /login, without a token)."""
    server = api_servers.start({**service_env, "BABELWIRE_API_TOKENS": TOKEN,
                                "BABELWIRE_API_HEADER_TIMEOUT_S": "1", "BABELWIRE_API_BODY_TIMEOUT_S": "1"})
    # six slow-header connections, one header byte every 0.3 s (issue: they stayed 30 s)
    socks = [_raw_connection(server.port) for _ in range(6)]
    for sock in socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    header = b"X-Slow: " + b"a" * 200
    open_socks = list(socks)
    started = time.monotonic()
    for byte in header:  # 200 bytes × 0.3 s = 60 s if nobody cuts us off
        for sock in list(open_socks):
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                open_socks.remove(sock)
                continue
            if _closed_by_server(sock):
                open_socks.remove(sock)
        if not open_socks:
            break
    held = time.monotonic() - started
    assert not open_socks, f"{len(open_socks)} slow-header connection(s) still open after {held:.0f} s"
    print(f"slow-header connections closed after {held:.1f} s (header timeout 1 s)")
    for sock in socks:
        sock.close()

    # a body that stops arriving: 408, for the API and for the login form
    for path in ("/v1/articles", "/login"):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        auth = f"Authorization: Bearer {TOKEN}\r\n" if path.startswith("/v1") else ""
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                      "Content-Length: 1000\r\n\r\n").encode() + b'{"text": "')
        answer = sock.recv(4096)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408"), (path, answer[:200])
    # and a normal client still gets through
    with server.client(TOKEN) as client:
        assert client.get("/healthz").status_code == 200


def test_login_signs_a_session_limits_failures_and_logs_out(
    service_env: dict[str, str], api_servers: ApiServerFactory
) -> None:
    """Issue 10 item 13."""
    server = api_servers.start({**service_env, "BABELWIRE_API_TOKENS": TOKEN,
                                "BABELWIRE_API_TRUSTED_PROXIES": "127.0.0.5"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with server.client(follow_redirects=False) as browser:
        login = browser.post("/login", content=f"token={TOKEN}&next=/", headers=form)
        assert login.status_code == 303
        cookie = browser.cookies.get("babelwire_session")
        assert cookie and TOKEN not in cookie and TOKEN not in login.headers["set-cookie"]
        assert "secure" not in login.headers["set-cookie"].lower()  # plain HTTP, no trusted proxy
        assert browser.get("/").status_code == 200
        # a tampered session is no session
        tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
        with server.client(follow_redirects=False) as forger:
            assert forger.get("/", headers={"Cookie": f"babelwire_session={cookie}"}).status_code == 200
            assert forger.get("/", headers={"Cookie": f"babelwire_session={tampered}"}).status_code == 401
            assert forger.get("/", headers={"Cookie": f"babelwire_session={TOKEN}"}).status_code == 401
        logout = browser.post("/logout")
        assert logout.status_code == 303 and logout.headers["location"] == "/login"
        assert "max-age=0" in logout.headers["set-cookie"].lower()  # the browser drops it
        assert "babelwire_session" not in browser.cookies
        assert browser.get("/").status_code == 401

    with server.client(follow_redirects=False) as guesser:
        for n in range(5):
            wrong = guesser.post("/login", content=f"token=guess-{n}", headers=form)
            assert wrong.status_code == 403
        blocked = guesser.post("/login", content=f"token={TOKEN}", headers=form)  # even the right one, now
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "babelwire_session" not in guesser.cookies

    # behind a trusted proxy on another address that says the request came over HTTPS: Secure
    def via(address: str) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=server.url, transport=transport, follow_redirects=False) as proxy:
            return proxy.post("/login", content=f"token={TOKEN}", headers={**form, "X-Forwarded-Proto": "https",
                                                                            "X-Forwarded-For": "203.0.113.9"})

    trusted = via("127.0.0.5")
    assert trusted.status_code == 303 and "secure" in trusted.headers["set-cookie"].lower()
    untrusted = via("127.0.0.6")  # not in the list: its X-Forwarded-Proto is not believed
    assert untrusted.status_code == 303 and "secure" not in untrusted.headers["set-cookie"].lower()


def test_versions_of_one_external_id_in_one_request_follow_submission_order(
    service_env: dict[str, str], api_servers: ApiServerFactory
) -> None:
    """Issue 10 item 14: the later item of the list is "the newest", whatever the keys."""
    limits = Settings(targets=service_env["BABELWIRE_TARGETS"]).limits
    versions = [{"id": "story-14", "text": f"The council met on day {n}. It voted."} for n in range(2)]
    # sent smaller key first: the old tie-break (equal timestamps, key ascending) picks it
    versions.sort(key=lambda v: validate_article(v, limits).key)
    older, newer = (validate_article(v, limits).key for v in versions)
    server = api_servers.start(service_env)
    with server.client() as client:
        assert client.post("/v1/articles", json=versions).status_code == 202
        newest = client.get("/v1/articles/story-14").json()
    assert newest["article_id"] == newer and newest["other_article_ids"] == [older]


def test_a_list_with_invalid_items_accepts_the_valid_ones(
    service_env: dict[str, str], api_servers: ApiServerFactory, redis_url: str
) -> None:
    """Issue 13 item 5: 10 articles, 3 invalid → 7 jobs, 3 errors naming index and field."""
    server = api_servers.start({**service_env, "BABELWIRE_MAX_TEXT_CHARS": "500"})
    items: list[Any] = [{"id": f"batch-{i}", "text": f"Article {i} on the harbour. Ships came back."} for i in range(10)]
    items[2] = {"id": "batch-2", "text": "x" * 501}
    items[5] = {"id": "batch-5", "text": "Fine.", "targets": ["de", "zz"]}
    items[8] = "not an object"
    with server.client() as client:
        response = client.post("/v1/articles", json=items)
        assert response.status_code == 202, response.text
        report = response.json()
    assert report["accepted"] == 7 and len(report["jobs"]) == 7
    assert [j["index"] for j in report["jobs"]] == [0, 1, 3, 4, 6, 7, 9]
    assert [(r["index"], r["field"]) for r in report["rejected"]] == [(2, "text"), (5, "targets"), (8, "article")]
    assert [r["loc"] for r in report["rejected"]] == [["body", 2, "text"], ["body", 5, "targets"], ["body", 8, "article"]]
    assert "at most 500 characters" in report["rejected"][0]["msg"]
    assert live_length(redis_url) == 7
