"""The models package's exceptions: every one derives from `ModelsError`.

Each also keeps the standard-library base its callers catch (`ValueError` for a bad manifest,
checkpoint or package, `LookupError` for a missing model, `RuntimeError` for a failed pull).
`models` imports `pipeline`, never the other way, so `ModelsError` derives from nothing of
`pipeline`'s: a pipeline error and a models error stay apart.
"""

from __future__ import annotations

from pathlib import Path


class ModelsError(Exception):
    """Base of every error the models package raises on purpose."""


class ManifestError(ModelsError, ValueError):
    pass


class ModelNotFoundError(ModelsError, LookupError):
    """The store has no model of that name; the message names the command that fetches it."""

    def __init__(self, name: str, root: Path):
        super().__init__(
            f"model {name!r} is not in the model store {root} (fetch it: babelwire models pull {name})"
        )
        self.name = name


class ConvertError(ModelsError, ValueError):
    """A checkpoint that cannot become a store model; the message says what to change."""


class ArgosError(ModelsError, ValueError):
    """A package that cannot be imported; the message says which member or field and why."""


class CatalogueError(ModelsError, LookupError):
    pass


class PullError(ModelsError, RuntimeError):
    """A pull that cannot go on; the message says why and what to do."""


class LicenseNotAccepted(PullError):
    pass


class UnknownModel(PullError):
    """A name that is neither in the catalogue, nor a hub id, nor an OPUS-MT pair name."""
