"""`babelwire` command line (docs/contracts.md, CLI).

Exit codes: 0 success (partial results included), 1 some articles/lines failed or were
rejected, 2 usage or configuration error. Each command group lives in its own module.
"""

from __future__ import annotations

from worker.cli.app import app

# Importing the command modules attaches their commands to `app`.
from worker.cli import api_cmds, glossary_cmds, models_cmds, pipeline_cmds, queue_cmds, run_cmd, webhooks_cmds  # noqa: E402,F401


def main() -> None:
    app()
