"""`babelwire models import FILE.argosmodel`: Argos Translate packages as store models.

An Argos Translate package is a zip archive with one top-level directory:

    translate-en_de-1_0/
        metadata.json        {"package_version", "argos_version", "from_code", "to_code", ...}
        model/               a CTranslate2 model (model.bin, config.json, vocabulary)
        sentencepiece.model  the SentencePiece model of both sides
        stanza/              optional sentence splitter (babelwire has its own; not used)
        README.md

The archive comes from outside, so it is checked before anything is written: member
names (no absolute paths, no `..`, no links, one top-level directory), member count, and
declared and actual uncompressed sizes. Only `model/`, `sentencepiece.model`, `metadata.json`
and `README.md` are extracted.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from models.exceptions import ArgosError, ManifestError
from models.manifest import Manifest, TokenizerSpec, validate_name
from models.store import ModelStore
from pipeline import safe_json
from pipeline.languages import is_known, normalize_code

# What reading a member's data can raise when the archive lies (sizes, CRC, truncation).
ZIP_DATA_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 4 * 1024**3  # NLLB-size packages are ~2.5 GB unpacked
MAX_METADATA_BYTES = 1024**2
TOKENIZER_FILE = "sentencepiece.model"
EXTRACTED = ("model/", TOKENIZER_FILE, "metadata.json", "README.md")


@dataclass(frozen=True)
class ArgosPackage:
    top: str  # the package's top-level directory inside the archive
    from_code: str
    to_code: str
    package_version: str
    argos_version: str
    metadata: dict

    @property
    def default_name(self) -> str:
        return f"argos-{self.from_code}-{self.to_code}"


def _check_members(archive: zipfile.ZipFile, max_total_bytes: int) -> str:
    """Validate every member's name, type and size; returns the top-level directory."""
    infos = archive.infolist()
    if not infos:
        raise ArgosError("the archive is empty")
    if len(infos) > MAX_MEMBERS:
        raise ArgosError(f"the archive has {len(infos):,} members (at most {MAX_MEMBERS:,})")
    total = 0
    tops: set[str] = set()
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
            raise ArgosError(f"member {name!r}: absolute paths are not allowed")
        if any(part in ("..", "") for part in path.parts) or not path.parts:
            raise ArgosError(f"member {name!r}: path escapes the package ('..' or empty part)")
        # Unix file type bits, when the archiver wrote them (zero means a plain file).
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArgosError(f"member {name!r}: links and special files are not allowed")
        total += info.file_size
        if total > max_total_bytes:
            raise ArgosError(
                f"the archive unpacks to more than {max_total_bytes:,} bytes (limit; got at least {total:,})"
            )
        tops.add(path.parts[0])
    if len(tops) != 1:
        raise ArgosError(f"an Argos package has one top-level directory (got {sorted(tops)[:5]})")
    return tops.pop()


def read_package(archive: zipfile.ZipFile, max_total_bytes: int = MAX_TOTAL_BYTES) -> ArgosPackage:
    top = _check_members(archive, max_total_bytes)
    names = set(archive.namelist())
    meta_name = f"{top}/metadata.json"
    if meta_name not in names:
        raise ArgosError(f"no {meta_name} in the archive: not an Argos Translate package")
    if archive.getinfo(meta_name).file_size > MAX_METADATA_BYTES:
        raise ArgosError(f"{meta_name} is over {MAX_METADATA_BYTES:,} bytes")
    try:
        metadata = safe_json.loads(archive.read(meta_name))
    except ZIP_DATA_ERRORS as exc:
        raise ArgosError(f"{meta_name}: damaged in the archive ({exc})") from None
    except ValueError as exc:  # bad JSON or UTF-8, nesting too deep
        raise ArgosError(f"{meta_name}: not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise ArgosError(f"{meta_name}: must be a JSON object")
    codes = {}
    for key in ("from_code", "to_code"):
        value = metadata.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ArgosError(f"metadata.json: {key} is required (got {value!r})")
        if not is_known(value):
            raise ArgosError(f"metadata.json: {key} {value!r} is not a known language code")
        codes[key] = normalize_code(value)
    if codes["from_code"] == codes["to_code"]:
        raise ArgosError("metadata.json: from_code and to_code are the same language")
    if f"{top}/model/model.bin" not in names:
        raise ArgosError(f"no {top}/model/model.bin: the package holds no CTranslate2 model")
    if f"{top}/{TOKENIZER_FILE}" not in names:
        other = "bpe.model" if f"{top}/bpe.model" in names else None
        raise ArgosError(
            f"no {top}/{TOKENIZER_FILE}"
            + (": BPE-tokenized Argos packages are not supported" if other else "")
        )
    return ArgosPackage(
        top=top,
        from_code=codes["from_code"],
        to_code=codes["to_code"],
        package_version=str(metadata.get("package_version", "")),
        argos_version=str(metadata.get("argos_version", "")),
        metadata=metadata,
    )


def _extract(archive: zipfile.ZipFile, package: ArgosPackage, out_dir: Path, max_total_bytes: int) -> None:
    """Extract the members babelwire uses, flattening `model/` into `out_dir`; sizes are
    counted as they are written, so a member lying about its size is caught too."""
    written = 0
    prefix = f"{package.top}/"
    for info in archive.infolist():
        if info.is_dir():
            continue
        relative = info.filename[len(prefix):]
        if not relative.startswith(EXTRACTED):
            continue
        target_rel = relative[len("model/"):] if relative.startswith("model/") else relative
        if relative in ("metadata.json", "README.md"):
            target_rel = f"argos-{relative}"
        target = (out_dir / target_rel).resolve()
        if not target.is_relative_to(out_dir.resolve()):
            raise ArgosError(f"member {info.filename!r}: path escapes the package")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_total_bytes:
                        raise ArgosError(f"the archive unpacks to more than {max_total_bytes:,} bytes (limit)")
                    dst.write(chunk)
        except ZIP_DATA_ERRORS as exc:  # e.g. a header that understates the member's size: bad CRC
            raise ArgosError(f"member {info.filename!r}: damaged or inconsistent archive ({exc})") from None


def import_argos(
    file: Path,
    store_root: Path,
    *,
    name: str | None = None,
    force: bool = False,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Manifest:
    """Import an `.argosmodel` into `store_root`; returns the new model's manifest."""
    file = Path(file)
    if not file.is_file():
        raise ArgosError(f"{file}: no such file")
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise ArgosError(f"{file}: not a zip archive (an .argosmodel is one)") from None
    with archive:
        package = read_package(archive, max_total_bytes)
        name = validate_name(name or package.default_name)
        try:
            with ModelStore(Path(store_root)).staging(name, force=force) as out_dir:
                _extract(archive, package, out_dir, max_total_bytes)
                manifest = Manifest(
                    name=name,
                    task="translation",
                    # An OpenNMT-py Transformer driven like a Marian model: SentencePiece pieces in,
                    # pieces out, no language tokens. (Argos itself sends no </s> after the
                    # source; the Marian tokenizer adds one, which these models tolerate.)
                    family="marian",
                    tokenizer=TokenizerSpec(type="sentencepiece", source=TOKENIZER_FILE, target=TOKENIZER_FILE),
                    pairs=[[package.from_code, package.to_code]],
                    # Argos decodes with replace_unknowns: an unknown word is copied from the source.
                    replace_unknowns=True,
                    input_limit=512,
                    source={"file": file.name, "argos_package_version": package.package_version,
                            "argos_version": package.argos_version},
                    license=str(package.metadata.get("license") or "see argos-README.md"),
                    quantization=_quantization(out_dir),
                )
                manifest.save(out_dir)
        except (FileExistsError, ManifestError) as exc:
            raise ArgosError(str(exc)) from None
    return manifest


def _quantization(model_dir: Path) -> str:
    """Argos packages are int8 CTranslate2 models; the config records it when it can."""
    try:
        config = safe_json.loads((model_dir / "config.json").read_bytes())
    except (OSError, ValueError):
        return "int8"
    if not isinstance(config, dict):
        return "int8"
    return str(config.get("quantization") or "int8")
