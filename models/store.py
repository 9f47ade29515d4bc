"""The model store: `MODELS_DIR/<name>/` holds one CTranslate2 model and its `babelwire.json`.

Names are the only way in: a name is validated as a single path component and the store
builds the path itself, so nothing from a message can point outside the store.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from models.exceptions import ManifestError, ModelNotFoundError
from models.manifest import MANIFEST_FILE, Manifest, validate_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreProblem:
    """A directory in the store that is not a usable model (reported by `doctor`, skipped here)."""

    path: Path
    error: str


class ModelStore:
    def __init__(self, root: Path):
        # absolute but not symlink-resolved: a model directory may be a link an admin made
        self.root = Path(root).absolute()

    def path(self, name: str) -> Path:
        """Where model `name` lives (or would live); never a path outside the store."""
        path = self.root / validate_name(name)
        if path.parent != self.root:  # belt and braces: validate_name already refuses separators
            raise ManifestError(f"invalid model name {name!r}")
        return path

    def _scan(self) -> tuple[list[Manifest], list[StoreProblem]]:
        manifests: list[Manifest] = []
        problems: list[StoreProblem] = []
        if not self.root.is_dir():
            return manifests, problems  # no store yet: no models, not an error
        for manifest_path in sorted(self.root.glob(f"*/{MANIFEST_FILE}")):
            model_dir = manifest_path.parent
            try:
                manifest = Manifest.load(model_dir)
                if manifest.name != model_dir.name:
                    raise ManifestError(
                        f"manifest name {manifest.name!r} differs from its directory {model_dir.name!r}"
                    )
            except ManifestError as exc:
                problems.append(StoreProblem(model_dir, str(exc)))
                continue
            manifests.append(manifest)
        return manifests, problems

    def manifests(self) -> list[Manifest]:
        """Every usable model in the store, by name. Broken entries are logged and skipped."""
        manifests, problems = self._scan()
        for problem in problems:
            log.warning("model store: skipping %s: %s", problem.path, problem.error)
        return manifests

    def problems(self) -> list[StoreProblem]:
        """Directories with a manifest that cannot be used, and why."""
        return self._scan()[1]

    def names(self) -> list[str]:
        return [m.name for m in self.manifests()]

    def __contains__(self, name: str) -> bool:
        try:
            return (self.path(name) / MANIFEST_FILE).is_file()
        except ManifestError:
            return False

    def get(self, name: str) -> Manifest:
        path = self.path(name)
        if not (path / MANIFEST_FILE).is_file():
            raise ModelNotFoundError(name, self.root)
        manifest = Manifest.load(path)
        if manifest.name != name:
            raise ManifestError(f"{path}: manifest name {manifest.name!r} differs from its directory")
        return manifest

    def size_bytes(self, name: str) -> int:
        """Bytes of every file in the model's directory (weights dominate)."""
        path = self.path(name)
        if not path.is_dir():
            raise ModelNotFoundError(name, self.root)
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    @contextmanager
    def staging(self, name: str, *, force: bool = False) -> Iterator[Path]:
        """A folder to build model `name` in, moved into the store only when the block ends
        without error: a failed convert or import never leaves a half-written model behind.
        Raises FileExistsError when the model is there and `force` is not given."""
        final_dir = self.path(name)
        if final_dir.exists() and not force:
            raise FileExistsError(
                f"model {name!r} is already in the store {self.root} (use --force to replace it)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        # inside the store, so the final rename stays on one file system
        work = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=self.root))
        try:
            out_dir = work / name
            out_dir.mkdir()
            yield out_dir
            if final_dir.exists():
                self.remove(name)
            out_dir.rename(final_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def remove(self, name: str) -> None:
        path = self.path(name)
        if path.is_symlink():
            path.unlink()  # the link is the store's; what it points to is not
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            raise ModelNotFoundError(name, self.root)
