"""The private kombu names the guarded transport overrides or calls, checked.

The guarded transport (`transport.py`) subclasses kombu's Redis channel and QoS and relies
on names that are not kombu's public API. pyproject.toml pins kombu and celery to the minor
version the tests ran on; this module says, by name, which hook an upgrade removed or
renamed (tests/test_broker_kombu_hooks.py, and `babelwire worker` refuses to start), instead
of the transport silently falling back to kombu's own, unguarded, behaviour.
"""

from __future__ import annotations

import inspect
from typing import Any

from kombu.transport import redis as kombu_redis

from worker.broker.exceptions import MissingKombuHook

# (class, name, the parameters we call or override it with, or None for an attribute)
CLASS_HOOKS: tuple[tuple[type, str, tuple[str, ...] | None], ...] = (
    (kombu_redis.Channel, "_brpop_start", ("self", "timeout")),
    (kombu_redis.Channel, "_brpop_read", ("self", "options")),
    (kombu_redis.Channel, "_get", ("self", "queue")),
    (kombu_redis.Channel, "_put", ("self", "queue", "message", "kwargs")),
    (kombu_redis.Channel, "_get_message_priority", ("self", "message", "reverse")),
    (kombu_redis.Channel, "_restore", ("self", "message", "leftmost")),
    (kombu_redis.Channel, "_do_restore_message", ("self", "payload", "exchange", "routing_key", "pipe", "leftmost")),
    (kombu_redis.Channel, "_q_for_pri", ("self", "queue", "pri")),
    (kombu_redis.Channel, "_flush_brpop_reauth", ("self",)),
    (kombu_redis.Channel, "basic_consume", None),
    (kombu_redis.Channel, "conn_or_acquire", ("self", "client")),
    (kombu_redis.Channel, "from_transport_options", None),
    (kombu_redis.Channel, "unacked_key", None),
    (kombu_redis.Channel, "unacked_index_key", None),
    (kombu_redis.Channel, "global_keyprefix", None),
    (kombu_redis.Channel, "sep", None),
    (kombu_redis.Channel, "priority_steps", None),
    (kombu_redis.Channel, "QoS", None),
    (kombu_redis.SentinelChannel, "_sentinel_managed_pool", None),
    (kombu_redis.SentinelChannel, "from_transport_options", None),
    (kombu_redis.QoS, "append", ("self", "message", "delivery_tag")),
    (kombu_redis.QoS, "restore_by_tag", ("self", "tag", "client", "leftmost")),
    (kombu_redis.QoS, "restore_visible", None),
    (kombu_redis.QoS, "restore_unacked", None),
    (kombu_redis.QoS, "restore_unacked_once", ("self", "stderr")),
    (kombu_redis.QoS, "_remove_from_indices", ("self", "delivery_tag", "pipe")),
    (kombu_redis.QoS, "unacked_key", None),
    (kombu_redis.QoS, "unacked_index_key", None),
    (kombu_redis.QoS, "visibility_timeout", None),
    (kombu_redis.Transport, "_deliver", ("self", "message", "queue")),
    (kombu_redis.Transport, "brpop_timeout", None),
    (kombu_redis.Transport, "Channel", None),
    (kombu_redis.SentinelTransport, "Channel", None),
)
# set in __init__: checked on a live channel
CHANNEL_HOOKS = ("_queue_cycle", "_in_poll", "_brpop_sent_at", "client", "connection", "connection_errors")
QOS_HOOKS = ("_delivered", "channel")


def _parameters(function: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def missing_hooks(channel: Any = None) -> list[str]:
    """`Class.name` of every hook the installed kombu lacks (or whose parameters changed);
    given a live channel, the attributes kombu sets in `__init__` are checked on it too."""
    from kombu import transport

    missing = [] if isinstance(getattr(transport, "TRANSPORT_ALIASES", None), dict) else ["kombu.transport.TRANSPORT_ALIASES"]
    for cls, name, parameters in CLASS_HOOKS:
        found = inspect.getattr_static(cls, name, None)
        if found is None:
            missing.append(f"{cls.__module__}.{cls.__name__}.{name}")
        elif parameters is not None and _parameters(getattr(cls, name)) != parameters:
            missing.append(f"{cls.__module__}.{cls.__name__}.{name}{parameters} (now {_parameters(getattr(cls, name))})")
    if channel is not None:
        missing += [f"channel.{name}" for name in CHANNEL_HOOKS if not hasattr(channel, name)]
        missing += [f"channel.qos.{name}" for name in QOS_HOOKS if not hasattr(channel.qos, name)]
    return missing


def require_hooks(channel: Any = None) -> None:
    missing = missing_hooks(channel)
    if missing:
        import kombu

        raise MissingKombuHook(
            f"kombu {kombu.__version__} lacks what babelwire's Redis transport relies on: {', '.join(missing)}. "
            "Install the kombu version pinned in pyproject.toml."
        )
