"""Running `babelwire` commands in-process for the models tests.

`worker.config.get_settings()` is cached per process; each invocation here clears it before
and after, so the environment given to one command never leaks into the next.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner


def run_babelwire(args: list[str], env: dict[str, str], input: str | None = None):
    from worker.cli import app
    from worker.config import get_settings

    full_env = {k: None for k in os.environ if k.startswith("BABELWIRE_")}
    full_env.update(env)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args, env=full_env, input=input, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def models_env(models_dir: Path, **extra: str) -> dict[str, str]:
    env = {"BABELWIRE_MODELS_DIR": str(models_dir), "BABELWIRE_THREADS": "1"}
    env.update(extra)
    return env


def manifest_of(models_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((Path(models_dir) / name / "babelwire.json").read_text())
