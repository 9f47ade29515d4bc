"""The callback URL guard (worker/delivery/ssrf.py): refusals happen before any connection is
opened, allowed addresses are pinned, redirects are not followed, answers are capped.

Every test here runs under `only_loopback`: a connection to anything but 127.0.0.1 fails the
test. Names are resolved by a stub resolver; the only server is a receiver on 127.0.0.1."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.webhooks_support import ConnectionLog, LoopbackReceiver, Reply, StubResolver, guard_connections
from worker.delivery.exceptions import TransportError, UnsafeURLError
from worker.delivery.ssrf import AddressPolicy, AllowRule, HttpLimits, UrlGuard, parse_allowlist, post

NAMES = {
    "loopback.example.test": ["127.0.0.1"],
    "metadata.example.test": ["169.254.169.254"],
    "public.example.test": ["93.184.216.34"],
    "mixed.example.test": ["93.184.216.34", "10.1.2.3"],
    "mapped.example.test": ["::ffff:127.0.0.1"],
    "nat64.example.test": ["64:ff9b::a9fe:a9fe"],  # 169.254.169.254 through NAT64
    "v6loop.example.test": ["::1"],
}


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    return guard_connections(monkeypatch)


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver(NAMES)


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    r = LoopbackReceiver()
    yield r
    r.close()


FORBIDDEN = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/hook", "private"),
    ("http://127.0.0.1:{port}/hook", "loopback"),
    ("http://loopback.example.test:{port}/hook", "loopback"),
    ("http://metadata.example.test/hook", "link-local"),
    ("http://mixed.example.test/hook", "private"),
    ("http://mapped.example.test:{port}/hook", "loopback"),
    ("http://nat64.example.test/hook", "link-local"),
    ("http://v6loop.example.test/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://100.64.0.1/hook", "not a public address"),  # carrier-grade NAT
]


@pytest.mark.parametrize("template,kind", FORBIDDEN)
def test_forbidden_addresses_are_refused_before_any_connection(
    template: str, kind: str, only_loopback: ConnectionLog, resolver: StubResolver, receiver: LoopbackReceiver
) -> None:
    url = template.format(port=receiver.port)
    guard = UrlGuard(AddressPolicy(), resolver)
    allow_all = parse_allowlist([url.split("/hook")[0].split("/latest")[0]])  # on the allowlist: still refused
    with pytest.raises(UnsafeURLError) as err:
        guard.check(url, allow_all)
    assert kind in str(err.value) and "BABELWIRE_WEBHOOK_ALLOW_NETWORKS" in str(err.value)
    assert only_loopback.addresses == [] and receiver.requests == []


@pytest.mark.parametrize("network,url", [
    ("127.0.0.1/32", "http://127.0.0.1:{port}/hook"),
    ("127.0.0.0/8", "http://loopback.example.test:{port}/hook"),
    ("127.0.0.1/32", "http://mapped.example.test:{port}/hook"),
])
def test_an_explicitly_allowed_network_is_called_at_the_checked_address(
    network: str, url: str, only_loopback: ConnectionLog, resolver: StubResolver, receiver: LoopbackReceiver
) -> None:
    url = url.format(port=receiver.port)
    host = url.split("//")[1].split(":")[0]
    guard = UrlGuard(AddressPolicy.from_strings([network]), resolver)
    target = guard.check(url, parse_allowlist([f"http://{host}:{receiver.port}/hook"]))
    assert target.ip in ("127.0.0.1", "::ffff:127.0.0.1")
    answer = post(target if target.ip == "127.0.0.1" else _pinned_v4(target), b'{"x":1}',
                  {"content-type": "application/json"})
    assert answer.status == 200
    assert [r.body for r in receiver.requests] == [b'{"x":1}']
    assert receiver.requests[0].headers["host"] == f"{host}:{receiver.port}"  # the name, not the address
    assert set(only_loopback.addresses) == {"127.0.0.1"}


def _pinned_v4(target):  # noqa: ANN001, ANN202 - the receiver listens on IPv4 only
    from dataclasses import replace

    return replace(target, ip="127.0.0.1")


def test_other_allowed_private_networks_pass_the_check_without_a_connection(
    only_loopback: ConnectionLog, resolver: StubResolver
) -> None:
    guard = UrlGuard(AddressPolicy.from_strings(["10.0.0.0/8", "169.254.169.254/32"]), resolver)
    assert guard.check("http://10.0.0.1/hook").ip == "10.0.0.1"
    assert guard.check("http://metadata.example.test/").ip == "169.254.169.254"
    assert guard.check("http://public.example.test/").ip == "93.184.216.34"
    assert only_loopback.addresses == []


def test_a_url_off_the_allowlist_is_refused_before_it_is_even_resolved(
    only_loopback: ConnectionLog, resolver: StubResolver
) -> None:
    guard = UrlGuard(AddressPolicy(), resolver)
    rules = parse_allowlist(["https://hooks.example.test/news", "https://*.cms.example.test"])
    for url in [
        "https://hooks.example.test.evil.test/news",   # suffix trick
        "https://hooks.example.test/newsroom",         # prefix, not a path boundary
        "http://hooks.example.test/news",              # scheme
        "https://hooks.example.test:8443/news",        # port
        "https://cms.example.test/x",                  # the wildcard wants a subdomain
        "https://evil.test/?https://a.cms.example.test/",
    ]:
        with pytest.raises(UnsafeURLError, match="allowlist"):
            guard.check(url, rules)
    with pytest.raises(UnsafeURLError, match="allowlist"):
        guard.check("https://public.example.test/", ())  # an empty allowlist allows nothing
    assert resolver.lookups == [] and only_loopback.addresses == []
    assert rules[0].matches("https://hooks.example.test/news/item?id=1")
    assert rules[1].matches("https://a.b.cms.example.test/anything")


@pytest.mark.parametrize("url,reason", [
    ("ftp://public.example.test/x", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http://user:pw@public.example.test/", "user or password"),
    ("http:///nohost", "no host"),
    ("http://public.example.test:99999/", "not a valid URL"),
])
def test_malformed_or_unsupported_urls_are_refused(url: str, reason: str, only_loopback: ConnectionLog,
                                                   resolver: StubResolver) -> None:
    with pytest.raises(UnsafeURLError, match=reason):
        UrlGuard(AddressPolicy(), resolver).check(url)
    assert only_loopback.addresses == []


def test_allowlist_entries_are_checked_when_read() -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        AllowRule.parse("hooks.example.test/news")
    with pytest.raises(ValueError, match="allowed network"):
        AddressPolicy.from_strings(["10.0.0.0/33"])


def test_a_redirect_to_a_forbidden_address_is_not_followed(only_loopback: ConnectionLog, resolver: StubResolver) -> None:
    receiver = LoopbackReceiver(lambda n, r: Reply(302, (("Location", "http://169.254.169.254/latest/meta-data/"),)))
    try:
        guard = UrlGuard(AddressPolicy.from_strings(["127.0.0.1/32"]), resolver)
        answer = post(guard.check(f"{receiver.url}/hook"), b"{}", {})
        assert answer.status == 302 and answer.location == "http://169.254.169.254/latest/meta-data/"
        assert len(receiver.requests) == 1
        assert set(only_loopback.addresses) == {"127.0.0.1"}  # nothing else was contacted
    finally:
        receiver.close()


def test_a_long_answer_is_read_only_up_to_the_cap(only_loopback: ConnectionLog, resolver: StubResolver) -> None:
    receiver = LoopbackReceiver(lambda n, r: Reply(200, body=b"x" * 5_000_000))
    try:
        guard = UrlGuard(AddressPolicy.from_strings(["127.0.0.1/32"]), resolver)
        answer = post(guard.check(f"{receiver.url}/hook"), b"{}", {}, HttpLimits(max_response_bytes=1000))
        assert answer.status == 200 and answer.body_bytes == 1000
    finally:
        receiver.close()


def test_a_receiver_that_never_answers_times_out(only_loopback: ConnectionLog, resolver: StubResolver) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection (in the backlog) and never answers
    try:
        guard = UrlGuard(AddressPolicy.from_strings(["127.0.0.1/32"]), resolver)
        target = guard.check(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        with pytest.raises(TransportError, match="(?i)timeout|timed out"):
            post(target, b"{}", {}, HttpLimits(connect_s=1, read_s=0.3))
    finally:
        listener.close()


def test_the_connection_guard_itself_refuses_an_outside_address(only_loopback: ConnectionLog) -> None:
    """The fixture works: an attempt to reach anything but 127.0.0.1 fails the test."""
    import socket

    s = socket.socket()
    try:
        with pytest.raises(AssertionError, match="only 127.0.0.1"):
            s.connect(("169.254.169.254", 80))
    finally:
        s.close()


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackReceiver]:  # noqa: ANN001
    """HTTPS on 127.0.0.1 with a self-signed certificate for hooks.example.test, which the
    client trusts (SSL_CERT_FILE): what is checked is the name in the URL, not the address."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=hooks.example.test",
                    "-addext", "subjectAltName=DNS:hooks.example.test"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    r = LoopbackReceiver(tls=context)
    yield r
    r.close()


def test_https_goes_to_the_pinned_address_and_checks_the_certificate_against_the_urls_name(
    tls_receiver: LoopbackReceiver, only_loopback: ConnectionLog
) -> None:
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    guard = UrlGuard(AddressPolicy.from_strings(["127.0.0.1/32"]), resolver)
    answer = post(guard.check(f"https://hooks.example.test:{tls_receiver.port}/hook"), b"{}", {})
    assert answer.status == 200 and tls_receiver.requests[0].headers["host"] == f"hooks.example.test:{tls_receiver.port}"
    with pytest.raises(TransportError, match="(?i)certificate|hostname"):  # same address, a name the cert lacks
        post(guard.check(f"https://other.example.test:{tls_receiver.port}/hook"), b"{}", {})
    assert len(tls_receiver.requests) == 1 and set(only_loopback.addresses) == {"127.0.0.1"}
