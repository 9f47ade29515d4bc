"""The pipeline package's exceptions: every one derives from `PipelineError`.

Each also keeps the standard-library base its callers catch (`ValueError` for bad input,
`LookupError` for a missing model), so `except ValueError` goes on working.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline package raises on purpose."""


class ArticleError(PipelineError, ValueError):
    """Input that breaks the schema or a limit. Never retried."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoModelError(PipelineError, LookupError):
    """No model serves a request. The message names the pair and the command that fetches one."""

    def __init__(self, message: str, *, source: str | None = None, target: str | None = None):
        super().__init__(message)
        self.source = source
        self.target = target


class JSONDepthError(PipelineError, ValueError):
    """JSON nested deeper than the decoder allows."""

    def __init__(self, depth: int, max_depth: int):
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.depth = depth
        self.max_depth = max_depth
