"""The guarded transport relies on private kombu names: an upgrade that removes or renames
one must fail here, naming it, rather than leave the worker on kombu's unguarded code."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from packaging.requirements import Requirement

from worker.broker.exceptions import MissingKombuHook
from worker.broker.hooks import missing_hooks
from worker.celery_app import create_app
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_kombu_has_every_hook_on_its_classes_and_on_a_live_channel(redis_url: str) -> None:
    assert missing_hooks() == []
    app = create_app(Settings(broker_url=redis_url))
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert type(channel).__name__ == "GuardedRedisChannel"
        assert missing_hooks(channel) == []


@pytest.mark.parametrize("owner, name", [
    (kombu_redis.Channel, "_brpop_start"), (kombu_redis.Channel, "_brpop_read"),
    (kombu_redis.Channel, "_q_for_pri"), (kombu_redis.Channel, "_do_restore_message"),
    (virtual.QoS, "restore_unacked_once"), (kombu_redis.QoS, "restore_by_tag"),
    (kombu_redis.QoS, "_remove_from_indices"), (kombu_redis.QoS, "unacked_key"),
    (virtual.Transport, "_deliver"),
])
def test_a_removed_hook_is_named_and_the_app_refuses_to_start(monkeypatch: pytest.MonkeyPatch, owner: type,
                                                              name: str) -> None:
    monkeypatch.delattr(owner, name)
    assert any(f"{owner.__name__}.{name}" in found for found in missing_hooks())
    with pytest.raises(MissingKombuHook, match=name):
        create_app(Settings())


def test_a_hook_whose_parameters_changed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kombu_redis.QoS, "restore_by_tag", lambda self, tag, client=None, left=False: None)
    assert [found for found in missing_hooks() if "QoS.restore_by_tag" in found]


def test_celery_kombu_and_redis_are_pinned_to_a_range_that_holds_the_installed_versions() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {(req := Requirement(line)).name: req.specifier for line in dependencies}
    for name in ("celery", "kombu", "redis"):
        assert any(spec.operator == "<" for spec in pins[name]), f"{name} has no upper bound"
        assert pins[name].contains(version(name)), f"{name} {version(name)} is outside {pins[name]}"
