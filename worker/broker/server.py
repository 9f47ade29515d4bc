"""The broker server: which Redis versions can be the broker, and TLS for `rediss://`."""

from __future__ import annotations

import ssl
from typing import Any

REDIS_SCHEMES = ("redis://", "rediss://")
MIN_REDIS_VERSION = (6, 2)  # BLMOVE, which an idle worker waits with


def redis_version_problem(version: str) -> str | None:
    """Why a Redis server of this version cannot be the broker, or None."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None  # not a version we can read (a Redis-compatible server): let it try
    if found < MIN_REDIS_VERSION:
        need = ".".join(map(str, MIN_REDIS_VERSION))
        return f"Redis {version} is too old for the broker: babelwire needs Redis >= {need} (BLMOVE)"
    return None


def redis_server_version(url: str, timeout: float = 2.0) -> str:
    """The version a Redis server reports (raises when it cannot be reached)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return str(client.info("server").get("redis_version", ""))
    finally:
        client.close()


def check_broker_version(broker_url: str, timeout: float = 2.0) -> str | None:
    """The broker's version problem, if it is reachable Redis and too old (an unreachable
    broker is not this check's business: the worker retries connecting)."""
    if not broker_url.startswith(REDIS_SCHEMES):
        return None
    try:
        version = redis_server_version(broker_url, timeout)
    except Exception:
        return None
    return redis_version_problem(version)


def broker_tls(broker_url: str) -> dict[str, Any] | bool:
    """TLS for a `rediss://` broker: the server's certificate is verified. (kombu's own default
    for a bare rediss:// URL is not to verify, which lets anyone in the middle read and write the
    queues.) TLS options in the URL's query string — `ssl_ca_certs=/path/ca.pem`, or an explicit
    `ssl_cert_reqs=none` — take the place of this default, as they come from the environment."""
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED} if broker_url.startswith("rediss://") else False


def broker_client(settings: Any, **kwargs: Any) -> Any:
    """A redis-py client of the broker's Redis (queue depths, health): the URL's server, or for
    `sentinel://` URLs the current master, found through the sentinels (a failover is followed)."""
    import redis

    url = settings.broker_url
    if not url.startswith("sentinel://"):
        return redis.Redis.from_url(url, **kwargs)
    from urllib.parse import urlparse

    from redis.sentinel import Sentinel

    parts = [urlparse(part) for part in url.split(";") if part]
    sentinels = [(part.hostname or "localhost", part.port or 26379) for part in parts]
    db = int((parts[0].path or "/0").lstrip("/") or 0)
    timeouts = {k: v for k, v in kwargs.items() if k in ("socket_timeout", "socket_connect_timeout")}
    return Sentinel(sentinels, sentinel_kwargs=timeouts).master_for(
        settings.broker_sentinel_master, db=db, password=parts[0].password, **kwargs)
