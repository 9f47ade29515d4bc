"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the compose file
parses, every babelwire service runs a real CLI command with valid options, and every
BABELWIRE_* variable it sets is a real setting with a valid value."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from worker.cli import app
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instruction(name: str) -> str:
    lines = [l for l in (ROOT / "Dockerfile").read_text().splitlines() if l.startswith(name + " ")]
    assert len(lines) == 1, f"one {name} in the Dockerfile"
    return lines[0][len(name) + 1 :]


def babelwire_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose["services"].items()
        if "build" in svc or str(svc.get("image", "")).startswith("babelwire")
    }


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert {"redis", "postgres", "worker", "api", "flower"} <= set(compose["services"])
    assert set(babelwire_services(compose)) == {"worker", "api", "convert", "webhooks"}


def test_image_entrypoint_is_the_cli() -> None:
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["babelwire"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'babelwire = "worker.cli:main"' in pyproject


@pytest.mark.parametrize("service", ["worker", "api", "webhooks"])
def test_service_command_is_a_real_cli_command(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    assert isinstance(command, list) and command
    group = typer.main.get_command(app)
    with group.make_context("babelwire", [command[0]]) as ctx:
        sub = group.get_command(ctx, command[0])
        assert sub is not None, f"{service}: `babelwire {command[0]}` is not a command"
        # parses the options exactly as the CLI would, without running the command
        sub.make_context(command[0], list(command[1:]), parent=ctx)


def test_default_image_command_is_a_real_cli_command() -> None:
    command = json.loads(dockerfile_instruction("CMD"))
    group = typer.main.get_command(app)
    with group.make_context("babelwire", [command[0]]) as ctx:
        assert group.get_command(ctx, command[0]) is not None


def test_environment_names_real_settings_with_valid_values(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name, svc in babelwire_services(compose).items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        values: dict[str, str] = {}
        for key, value in env.items():
            assert key.startswith("BABELWIRE_"), f"{name}: {key} is not a babelwire setting"
            field = key[len("BABELWIRE_"):].lower()
            assert field in fields, f"{name}: {key} is not a setting (worker/config.py)"
            if not re.search(r"\$\{", str(value)):  # interpolated from the host's environment
                values[field] = str(value)
        Settings(**values)  # every literal value is valid for its setting


def test_redis_persists_with_aof(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    joined = " ".join(command)
    assert "--appendonly yes" in joined and "--appendfsync everysec" in joined
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_models_are_on_a_volume_and_flower_watches_the_same_broker(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert any(v.split(":")[1] == worker["environment"]["BABELWIRE_MODELS_DIR"] for v in worker["volumes"])
    assert "models" in compose["volumes"]
    broker = worker["environment"]["BABELWIRE_BROKER_URL"]
    assert f"--broker={broker}" in compose["services"]["flower"]["command"]


def test_the_image_that_pulls_models_has_the_convert_extra(compose: dict[str, Any]) -> None:
    """`models pull` converts, which needs the `convert` extra: the quick start's pull runs the
    `convert` target; the default target (the last stage, what `up` runs) stays without torch."""
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert stages[-1] == ("base", "runtime") and ("base", "convert") in stages
    convert_stage = (ROOT / "Dockerfile").read_text().split("AS convert", 1)[1].split("\nFROM ", 1)[0]
    assert '"/app[convert]"' in convert_stage
    assert compose["services"]["convert"]["build"]["target"] == "convert"
    assert compose["services"]["worker"]["build"]["target"] == "runtime"
    assert "profiles" in compose["services"]["convert"]  # not started by `up`
    header = (ROOT / "docker-compose.yml").read_text()
    assert "docker compose run --rm convert models pull" in header
    assert "run --rm worker models pull" not in header
    assert any(v.split(":")[1] == "/models" for v in compose["services"]["convert"]["volumes"])

