"""Outbound HTTP for webhooks that cannot be turned against the network it runs in.

A callback URL comes from outside (an article's `callback_url`), so before anything is sent:

1. the URL must be http(s), carry no user:password, and — for a per-article callback — match
   an entry of the operator's allowlist (`AllowRule`: scheme, host or `*.domain`, port, path
   prefix);
2. its host is resolved *here*, and every address it resolves to must be public: loopback,
   link-local (169.254.169.254, the cloud metadata service, is one), private, shared (CGNAT),
   multicast, reserved and unspecified addresses are refused unless the operator allowed
   their network explicitly (`AddressPolicy.allowed_networks`). IPv4 inside IPv6
   (`::ffff:a.b.c.d`, `64:ff9b::a.b.c.d`) is judged as the IPv4 address;
3. the connection goes to the address that was checked (`PinnedTarget.ip`), with the original
   host name in `Host` and for TLS (SNI and certificate check), so a second, different DNS
   answer (DNS rebinding) cannot move it;
4. redirects are never followed: a 3xx is a failed attempt;
5. connect, read and whole-request timeouts apply; at most `max_response_bytes` of the answer
   are read, and discarded.

All of this happens before any socket is opened; `post` is the only function that opens one.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import urllib3

from worker.delivery.exceptions import ResolveError, TransportError, UnsafeURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # host, port → addresses (as text)

SCHEMES = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_CHARS = 2_000


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveError(f"{host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- the allowlist --------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowRule:
    """One allowlist entry: `https://hooks.example.com/news/` or `https://*.example.com`.

    Scheme and port must be equal; `*.example.com` matches any subdomain of example.com (not
    example.com itself); a path, if given, must be a prefix ending at a `/` boundary."""

    scheme: str
    host: str  # lower case; a leading "*." is a wildcard
    port: int
    path: str  # "" or a prefix without trailing slash

    @classmethod
    def parse(cls, entry: str) -> "AllowRule":
        parts = urlsplit(entry.strip())
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES or not parts.hostname:
            raise ValueError(f"allowlist entry {entry!r}: write scheme://host[:port][/path], scheme http or https")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"allowlist entry {entry!r}: no user, query or fragment")
        return cls(scheme, parts.hostname.lower().rstrip("."), parts.port or SCHEMES[scheme], parts.path.rstrip("/"))

    def matches(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
        if scheme != self.scheme or (port or SCHEMES.get(scheme)) != self.port or not host:
            return False
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]) or host == self.host[2:]:
                return False
        elif host != self.host:
            return False
        path = parts.path or "/"
        return not self.path or path == self.path or path.startswith(self.path + "/")


def parse_allowlist(entries: Iterable[str]) -> tuple[AllowRule, ...]:
    return tuple(AllowRule.parse(e) for e in entries if e.strip())


# --- addresses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses a request may go to: public ones, and the networks the
    operator allowed explicitly (an internal receiver, or 127.0.0.1 in tests)."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> "AddressPolicy":
        try:
            return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()))
        except ValueError as exc:
            raise ValueError(f"allowed network: {exc}") from None

    def refusal(self, address: str) -> str | None:
        """What kind of address forbids a request to `address` ("a loopback address"), or None."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            return "not an IP address"
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        judged = _embedded_ipv4(ip) or ip
        if judged != ip and any(judged in net for net in self.allowed_networks if net.version == 4):
            return None
        for test, what in (
            ("is_loopback", "loopback"), ("is_link_local", "link-local (cloud metadata lives here)"),
            ("is_unspecified", "unspecified"), ("is_multicast", "multicast"), ("is_private", "private"),
            ("is_reserved", "reserved"),
        ):
            if getattr(judged, test):
                return f"a {what} address"
        if not judged.is_global:
            return "not a public address"
        return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# --- a checked, pinned target ---------------------------------------------------------------


@dataclass(frozen=True)
class PinnedTarget:
    """A URL whose host resolved to `ip`, which passed the policy: connect only there."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    ip: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class UrlGuard:
    """Checks a URL and pins its address (see the module doc). `allowlist` None: no allowlist
    needed (an endpoint the operator registered); empty: nothing is allowed."""

    policy: AddressPolicy = AddressPolicy()
    resolver: Resolver = system_resolver

    def check(self, url: str, allowlist: tuple[AllowRule, ...] | None = None) -> PinnedTarget:
        if len(url) > MAX_URL_CHARS:
            raise UnsafeURLError(url, f"longer than {MAX_URL_CHARS:,} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeURLError(url, f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise UnsafeURLError(url, "only http and https URLs are called")
        if not parts.hostname:
            raise UnsafeURLError(url, "no host")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURLError(url, "a URL with user or password is not called")
        if allowlist is not None and not any(rule.matches(url) for rule in allowlist):
            raise UnsafeURLError(url, "does not match the callback allowlist (BABELWIRE_WEBHOOK_CALLBACK_ALLOWLIST)")
        host = parts.hostname.rstrip(".")
        port = port or SCHEMES[scheme]
        addresses = list(self.resolver(host, port))
        if not addresses:
            raise ResolveError(f"{host}: no address")
        for address in addresses:  # one bad answer refuses the name: no picking among them
            kind = self.policy.refusal(address)
            if kind:
                what = f"{address} is {kind}" if address == host else f"{host} resolves to {address}, {kind}"
                raise UnsafeURLError(url, f"{what}: refused (allow a network with BABELWIRE_WEBHOOK_ALLOW_NETWORKS)")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return PinnedTarget(url, scheme, host, port, target, addresses[0])


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpLimits:
    connect_s: float = 5.0
    read_s: float = 10.0
    total_s: float = 30.0  # the whole request, however slowly the answer drips in
    max_response_bytes: int = 64 * 1024


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    location: str | None = None  # of a redirect, which is not followed
    body_bytes: int = 0  # how much of the answer was read (and discarded)


def post(target: PinnedTarget, body: bytes, headers: dict[str, str], limits: HttpLimits = HttpLimits()) -> HttpAnswer:
    """POST `body` to the pinned address. Never follows a redirect; reads at most
    `limits.max_response_bytes` of the answer and drops it. TransportError when no answer."""
    timeout = urllib3.Timeout(connect=limits.connect_s, read=limits.read_s)
    common = dict(port=target.port, timeout=timeout, retries=False, maxsize=1, block=False)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.ip, cert_reqs="CERT_REQUIRED", server_hostname=target.host, assert_hostname=target.host, **common,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.ip, **common)
    deadline = time.monotonic() + limits.total_s
    try:
        response = pool.urlopen(
            "POST", target.target, body=body, redirect=False, preload_content=False, assert_same_host=False,
            headers={**headers, "Host": target.host_header, "Connection": "close"},
        )
        try:
            read = 0
            while read < limits.max_response_bytes and time.monotonic() < deadline:
                chunk = response.read(min(8192, limits.max_response_bytes - read))
                if not chunk:
                    break
                read += len(chunk)
            return HttpAnswer(response.status, response.headers.get("location"), read)
        finally:
            response.close()  # the rest of a long answer is never read
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from None
    finally:
        pool.close()
