from __future__ import annotations

import json
import sys
from typing import Any

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="babelwire",
    help="Multilingual summaries of news articles with CTranslate2 models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_error(exc: Exception) -> str:
    """A settings validation error as `configuration: BABELWIRE_X: why` lines (never the value:
    it may be a secret)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return f"configuration: {exc}"
    lines = []
    for error in exc.errors():
        name = "BABELWIRE_" + "_".join(str(p) for p in error["loc"][:1]).upper() if error["loc"] else "settings"
        lines.append(f"{name}: {error['msg']}")
    return "configuration: " + "; ".join(lines)


def load_settings() -> Any:
    """The settings, or exit 2 naming each bad BABELWIRE_* variable."""
    from worker.config import get_settings

    try:
        return get_settings()
    except Exception as exc:  # pydantic ValidationError (a bad variable), ValueError (a cross-field rule)
        raise fail(settings_error(exc)) from None


@app.callback()
def _check_settings(ctx: typer.Context) -> None:
    """Every command reads the settings: a bad one is exit 2 naming the variable, before any
    command runs (not a traceback from somewhere inside it)."""
    if ctx.resilient_parsing or "--help" in sys.argv[1:]:
        return
    load_settings()
