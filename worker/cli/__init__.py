"""`babelwire` command line (SPEC §3.4).

Exit codes: 0 success (partial results included), 1 some articles/lines failed or were
rejected, 2 usage or configuration error. Each command group lives in its own module.
"""

from __future__ import annotations

from worker.cli.app import app

# Registering the command modules attaches their commands to `app`.
from worker.cli import pipeline_cmds  # noqa: E402,F401

for _optional in ("queue_cmds", "models_cmds", "api_cmds"):
    try:
        __import__(f"worker.cli.{_optional}")
    except ModuleNotFoundError as exc:  # a module not written yet; remove once all exist
        if exc.name != f"worker.cli.{_optional}":
            raise


def main() -> None:
    app()
