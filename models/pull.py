"""`babelwire models pull`: a model from the Hugging Face hub into the store (docs/contracts.md, Model store).

The only place babelwire downloads anything. A catalogue name (or a hub id, or an
`opus-mt-xx-yy` name OPUS-MT publishes) is resolved to a repository and revision; the
revision is checked against what the hub answers (a pinned commit must come back as
itself); only the files a conversion needs are fetched with `huggingface_hub.snapshot_download`
(progress bars; an interrupted transfer resumes from where it broke off within a pull, and
files completed by an earlier, failed pull are not fetched again); then the checkpoint is
converted (int8 by default), or a ready CTranslate2 conversion is installed as is.

`HF_ENDPOINT` points it at a mirror (tests use a local stand-in); `HF_HOME`/`--cache-dir`
say where downloads are kept; `HF_HUB_DOWNLOAD_TIMEOUT` bounds each read (default 10 s).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from models.catalogue import Catalogue, CatalogueEntry
from models.convert import (
    M2M100_TOKEN,
    MARIAN_TOKEN,
    NLLB_TOKEN,
    language_token_map,
    convert_checkpoint,
    require_convert_extra,
)
from models.exceptions import (
    CatalogueError,
    ConvertError,
    LicenseNotAccepted,
    ManifestError,
    PullError,
    UnknownModel,
)
from models.manifest import MANIFEST_FILE, Manifest, TokenizerSpec, validate_name
from models.store import ModelStore

log = logging.getLogger(__name__)

COMMIT = re.compile(r"^[0-9a-f]{40}$")
OPUS_MT_NAME = re.compile(r"^opus-mt-[A-Za-z]{2,3}-[A-Za-z]{2,3}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

# What a conversion reads from a checkpoint repository; everything else (TF/Flax/Rust
# weights, ONNX exports) is never downloaded.
CHECKPOINT_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "source.spm",
    "target.spm", "spiece.model", "sentencepiece.bpe.model", "README.md",
)
# What a ready CTranslate2 conversion holds.
CONVERTED_FILES = (
    "model.bin", "config.json", "shared_vocabulary.json", "shared_vocabulary.txt",
    "source_vocabulary.json", "source_vocabulary.txt", "target_vocabulary.json",
    "target_vocabulary.txt", "tokenizer.json", "source.spm", "target.spm",
    "sentencepiece.bpe.model", "spiece.model", "README.md",
)


@dataclass(frozen=True)
class PullTarget:
    """What to download: the store name, the repository and revision, the catalogue entry."""

    name: str
    hub_id: str
    revision: str
    entry: CatalogueEntry | None

    @property
    def pinned(self) -> bool:
        return bool(COMMIT.match(self.revision))


def resolve(name: str, catalogue: Catalogue, revision: str | None = None) -> PullTarget:
    """A catalogue name, a hub id (`ORG/NAME`) or an `opus-mt-xx-yy` name → what to pull."""
    entry = catalogue.find(name)
    if entry is not None:
        source = entry.converted or entry
        return PullTarget(entry.name, source.hub_id, revision or source.revision, entry)
    if HUB_ID.match(name):
        return PullTarget(validate_name(name.split("/", 1)[1]), name, revision or "main", None)
    if OPUS_MT_NAME.match(name):
        # OPUS-MT publishes far more pairs than the catalogue lists, all under one scheme.
        return PullTarget(validate_name(name), f"Helsinki-NLP/{name}", revision or "main", None)
    catalogue.get(name)  # raises CatalogueError with suggestions
    raise AssertionError("unreachable")


def license_notice(target: PullTarget) -> str | None:
    """The confirmation text for a model whose license restricts use, or None."""
    entry = target.entry
    if entry is None or entry.commercial_use:
        return None
    return (
        f"{entry.name} is licensed {entry.license.upper()}: NON-COMMERCIAL use only "
        f"(see https://huggingface.co/{entry.hub_id}). A news site that earns money with its "
        "pages may not use it."
    )


def resolve_commit(hub_id: str, revision: str, *, timeout: float) -> tuple[str, list[str]]:
    """The commit `revision` names on the hub and the files at that commit. A pinned
    revision (40 hex digits) must come back as itself."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        info = HfApi().model_info(hub_id, revision=revision, timeout=timeout)
    except RevisionNotFoundError:
        raise PullError(
            f"revision {revision} of {hub_id} is not on the hub"
            + (" (the catalogue pins it; if the repository was rewritten, pull a commit you "
               "trust with --revision COMMIT)" if COMMIT.match(revision) else "")
        ) from None
    except RepositoryNotFoundError:
        raise PullError(f"{hub_id} is not on the hub (or is private)") from None
    except GatedRepoError:
        raise PullError(f"{hub_id} is gated: accept its terms on the hub and set HF_TOKEN") from None
    except OfflineModeIsEnabled:
        raise PullError("HF_HUB_OFFLINE is set: unset it to download models") from None
    except HfHubHTTPError as exc:
        raise PullError(f"the hub refused {hub_id}@{revision}: {exc}") from None
    except Exception as exc:  # connection refused, DNS, timeouts: the network, not the model
        raise PullError(f"cannot reach the hub for {hub_id} ({type(exc).__name__}: {exc})") from None
    commit = info.sha or ""
    if not COMMIT.match(commit):
        raise PullError(f"the hub answered no commit id for {hub_id}@{revision}")
    if COMMIT.match(revision) and commit != revision:
        raise PullError(
            f"revision mismatch for {hub_id}: asked for pinned commit {revision}, the hub "
            f"answered {commit}; refusing to use it"
        )
    files = [s.rfilename for s in (info.siblings or [])]
    return commit, files


def choose_files(files: list[str], converted: bool) -> list[str]:
    """The files worth downloading: tokenizer/config files and one copy of the weights
    (safetensors where the repository has them, else PyTorch)."""
    if converted:
        wanted = [f for f in files if f in CONVERTED_FILES]
        if "model.bin" not in wanted:
            raise PullError("the repository holds no CTranslate2 model (model.bin)")
        return wanted
    wanted = [f for f in files if f in CHECKPOINT_FILES]
    safetensors = [f for f in files if f.endswith(".safetensors") and "/" not in f]
    if safetensors:
        wanted += safetensors + [f for f in files if f == "model.safetensors.index.json"]
    else:
        torch_weights = [f for f in files if re.fullmatch(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?", f)]
        if not torch_weights:
            raise PullError("the repository holds no PyTorch weights (model.safetensors or pytorch_model.bin)")
        wanted += torch_weights
    if "config.json" not in wanted:
        raise PullError("the repository has no config.json: not a transformers checkpoint")
    return wanted


def download(
    hub_id: str, commit: str, files: list[str], *, cache_dir: Path | None, timeout: float
) -> Path:
    """Fetch `files` of `hub_id` at `commit` into the Hugging Face cache; returns the
    snapshot directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        path = snapshot_download(
            hub_id,
            revision=commit,
            allow_patterns=files,
            cache_dir=str(cache_dir) if cache_dir else None,
            etag_timeout=timeout,
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise PullError(f"download of {hub_id} failed: {exc}") from None
    except OSError as exc:
        raise PullError(f"download of {hub_id} failed ({exc}); run the pull again to resume") from None
    except Exception as exc:
        raise PullError(
            f"download of {hub_id} failed ({type(exc).__name__}: {exc}); run the pull again to resume"
        ) from None
    snapshot = Path(path)
    missing = [f for f in files if not (snapshot / f).is_file()]
    if missing:
        raise PullError(f"download of {hub_id} is incomplete (missing {missing}); run the pull again")
    return snapshot


def _convert_args(entry: CatalogueEntry | None) -> dict[str, Any]:
    """What the catalogue knows that a checkpoint may not say."""
    if entry is None:
        return {}
    args: dict[str, Any] = {"task": entry.task, "license": entry.license, "input_limit": entry.input_limit}
    if entry.task == "summarization":
        args["sources"] = list(entry.languages)
    elif not entry.many_to_many:  # many-to-many models list their languages in their tokens
        pairs = entry.translation_pairs()
        args["sources"] = sorted({s for s, _ in pairs})
        args["targets"] = sorted({t for _, t in pairs})
    return args


def install_converted(
    snapshot: Path, store_root: Path, target: PullTarget, source_info: dict[str, Any], *, force: bool
) -> Manifest:
    """A ready CTranslate2 conversion from the hub: copy it, write the manifest from the
    catalogue entry and the language tokens its vocabulary holds."""
    entry = target.entry
    assert entry is not None and entry.converted is not None
    files = {p.name for p in snapshot.iterdir() if p.is_file()}
    if "tokenizer.json" in files:
        spec = TokenizerSpec(type="tokenizer.json", file="tokenizer.json")
    elif {"source.spm", "target.spm"} <= files:
        spec = TokenizerSpec(type="sentencepiece", source="source.spm", target="target.spm")
    else:
        spm = next((f for f in ("sentencepiece.bpe.model", "spiece.model") if f in files), None)
        if spm is None:
            raise PullError(f"{target.hub_id}: no tokenizer files next to model.bin")
        spec = TokenizerSpec(type="sentencepiece", source=spm, target=spm)
    vocabulary: list[str] = []
    for vocab_file in ("shared_vocabulary.json", "target_vocabulary.json", "source_vocabulary.json"):
        if vocab_file in files:
            import json

            vocabulary += json.loads((snapshot / vocab_file).read_text(encoding="utf-8"))
    pattern = {"m2m100": M2M100_TOKEN, "nllb": NLLB_TOKEN}.get(entry.family, MARIAN_TOKEN)
    tokens = language_token_map(vocabulary, pattern)
    fields: dict[str, Any] = {}
    if entry.task == "summarization":
        fields["languages"] = list(entry.languages)
    elif entry.target_selection == "prefix_token":
        sources = [s for s in entry.sources if s in tokens]
        targets = [t for t in entry.targets if t in tokens]
        fields.update(
            sources=sources, targets=targets, target_selection="prefix_token",
            source_language_token=True,
            language_tokens={c: tokens[c] for c in sorted(set(sources) | set(targets))},
        )
    elif entry.target_selection == "source_token":
        targets = [t for t in entry.targets if t in tokens]
        fields.update(
            sources=list(entry.sources), targets=targets, target_selection="source_token",
            language_tokens={t: tokens[t] for t in targets},
        )
    else:
        fields.update(pairs=[list(p) for p in sorted(entry.translation_pairs())],
                      sources=[], targets=[])
    try:
        with ModelStore(store_root).staging(target.name, force=force) as out_dir:
            for f in files:
                shutil.copyfile(snapshot / f, out_dir / f)
            manifest = Manifest(
                name=target.name, task=entry.task, family=entry.family, tokenizer=spec,
                source_prefix="summarize: " if entry.family == "t5" else "",
                input_limit=entry.input_limit or 512, source=source_info, license=entry.license,
                quantization=entry.converted.quantization, **fields,
            )
            manifest.save(out_dir)
    except FileExistsError as exc:
        raise PullError(str(exc)) from None
    except ManifestError as exc:
        raise PullError(f"{target.name}: {exc}") from None
    return manifest


def pull(
    name: str,
    store_root: Path,
    *,
    catalogue: Catalogue | None = None,
    revision: str | None = None,
    accept_license: bool = False,
    confirm: Callable[[str], bool] | None = None,
    quantization: str = "int8",
    cache_dir: Path | None = None,
    timeout: float = 30.0,
    force: bool = False,
    echo: Callable[[str], None] = lambda message: log.info("%s", message),
) -> Manifest:
    """Download and install model `name`; returns its manifest.

    A model whose license restricts use is pulled only with `accept_license`, or when
    `confirm(notice)` (an interactive question) says yes.
    """
    catalogue = catalogue or Catalogue.load()
    try:
        target = resolve(name, catalogue, revision)
    except (CatalogueError, ManifestError) as exc:
        raise UnknownModel(str(exc)) from None
    store_root = Path(store_root)
    if (store_root / target.name / MANIFEST_FILE).is_file() and not force:
        echo(f"{target.name} is already in the store (use --force to pull it again)")
        return Manifest.load(store_root / target.name)
    notice = license_notice(target)
    if notice:
        echo(notice)
        if not accept_license and not (confirm and confirm(notice)):
            raise LicenseNotAccepted(
                f"{target.name}: license {target.entry.license} not accepted; "  # type: ignore[union-attr]
                f"pull it with --accept-license if your use is non-commercial"
            )
    if not target.pinned:
        echo(f"{target.hub_id}: revision {target.revision!r} is not a pinned commit; recording the commit it resolves to")
    converted = bool(target.entry and target.entry.converted)
    if not converted:
        try:
            require_convert_extra()  # before downloading gigabytes that could not be converted
        except ConvertError as exc:
            raise PullError(str(exc)) from None
    commit, files = resolve_commit(target.hub_id, target.revision, timeout=timeout)
    wanted = choose_files(files, converted)
    echo(f"downloading {target.hub_id}@{commit[:12]} ({len(wanted)} files)")
    snapshot = download(target.hub_id, commit, wanted, cache_dir=cache_dir, timeout=timeout)
    source_info = {"hub_id": target.hub_id, "revision": commit}
    if converted:
        return install_converted(snapshot, store_root, target, source_info, force=force)
    echo(f"converting {target.name} to CTranslate2 ({quantization})")
    try:
        return convert_checkpoint(
            snapshot, store_root, target.name, quantization=quantization,
            source_info=source_info, force=force, **_convert_args(target.entry),
        )
    except ConvertError as exc:
        raise PullError(f"{target.name}: {exc}") from None
