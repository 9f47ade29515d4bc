"""`babelwire models pull` against a local stand-in for the Hugging Face hub (no network).

Each pull runs `babelwire` in a subprocess whose HF_ENDPOINT points at the stand-in
(huggingface_hub reads it at import), with its own HF_HOME as download cache.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

import pytest

from tests import checkpoints_arch as arch
from tests.hub_standin import HubStandIn, commit_id, files_of
from tests.models_cli_helpers import manifest_of

REPO = "test-org/tiny-marian"
CT2_REPO = "test-org/tiny-marian-ct2"
README = "---\nlicense: cc-by-4.0\nlanguage:\n- en\n- de\n---\n# tiny\n"


@pytest.fixture(scope="module")
def checkpoint_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What the hub serves for the checkpoint repository, with files pull must not fetch."""
    import torch
    from safetensors.torch import load_file, save_file

    path = arch.build_marian(tmp_path_factory.mktemp("hub") / "tiny-marian")
    # Weights past huggingface_hub's 10 MB download chunk, so that a transfer broken off
    # half-way has written a chunk to resume from. Transformers ignores the extra tensor.
    tensors = load_file(path / "model.safetensors")
    tensors["babelwire_test_padding"] = torch.zeros(6_000_000)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    files = files_of(path)
    files["README.md"] = README.encode()
    files["tf_model.h5"] = b"TensorFlow weights: never downloaded"
    files["rust_model.ot"] = b"Rust weights: never downloaded"
    return files


@pytest.fixture(scope="module")
def converted_files(checkpoint_files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A ready CTranslate2 conversion of the same model, as a `*-ct2` repository holds it."""
    from models.convert import convert_checkpoint

    src = tmp_path_factory.mktemp("ck")
    for name, data in checkpoint_files.items():
        (src / name).write_bytes(data)
    store = tmp_path_factory.mktemp("ct2")
    convert_checkpoint(src, store, "ct2")
    return {n: d for n, d in files_of(store / "ct2").items() if n != "babelwire.json"}


def _entry(name: str, revision: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "hub_id": REPO, "revision": revision, "task": "translation", "family": "marian",
            "pairs": [["en", "de"]], "license": "cc-by-4.0", "size_mb": 1, **extra}


@pytest.fixture
def hub(checkpoint_files: dict[str, bytes], converted_files: dict[str, bytes]):
    with HubStandIn() as stand_in:
        stand_in.commit = stand_in.add(REPO, checkpoint_files)
        stand_in.ct2_commit = stand_in.add(CT2_REPO, converted_files)
        yield stand_in


@pytest.fixture
def pull_env(hub: HubStandIn, tmp_path: Path) -> dict[str, str]:
    catalogue = {
        "format": 1,
        "defaults": ["tiny-en-de"],
        "models": [
            _entry("tiny-en-de", hub.commit),
            _entry("tiny-nc", hub.commit, license="cc-by-nc-4.0", commercial_use=False,
                   converted={"hub_id": CT2_REPO, "revision": hub.ct2_commit, "quantization": "int8"}),
            _entry("tiny-gone", "0" * 40),
            _entry("tiny-ct2", hub.commit, converted={"hub_id": CT2_REPO, "revision": hub.ct2_commit, "quantization": "int8"}),
        ],
    }
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BABELWIRE_", "HF_", "HUGGING"))}
    env.update(
        BABELWIRE_MODELS_DIR=str(tmp_path / "models"),
        HF_ENDPOINT=hub.url,
        HF_HUB_OFFLINE="0",
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DOWNLOAD_TIMEOUT="10",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def _pull(cli: Callable, env: dict[str, str], tmp_path: Path, *args: str):
    return cli(["models", "pull", *args, "--catalogue", str(tmp_path / "catalogue.json")], env, timeout=300)


def _translates(models_dir: Path, name: str) -> None:
    from models.engines import ModelEngines

    engines = ModelEngines.open(models_dir, compute_type="int8", threads=1)
    route = engines.translation("en", "de")
    assert route.name == name
    [[out]] = engines.translate([(route, ["The council approved the budget."])])
    assert out.strip()


def test_pull_fetches_the_pinned_revision_resumes_an_interrupted_file_and_converts(
    cli: Callable, hub: HubStandIn, pull_env: dict[str, str], tmp_path: Path, checkpoint_files: dict[str, bytes]
) -> None:
    hub.cut_once.add("model.safetensors")
    result = _pull(cli, pull_env, tmp_path, "tiny-en-de")
    assert result.returncode == 0, result.stderr
    assert "tiny-en-de: translation en→de (int8)" in result.stdout

    # the weights broke off half-way and were completed with a range request
    gets = hub.gets("model.safetensors")
    assert [g.range for g in gets][0] is None
    assert len(gets) == 2 and gets[1].range and gets[1].range.startswith("bytes=")
    assert int(gets[1].range[len("bytes="):].split("-")[0]) > 0
    blobs = list((tmp_path / "hf").rglob("model.safetensors"))
    assert len(blobs) == 1 and blobs[0].read_bytes() == checkpoint_files["model.safetensors"]
    # only what a conversion reads was fetched
    assert not hub.gets("tf_model.h5") and not hub.gets("rust_model.ot")

    models = tmp_path / "models"
    manifest = manifest_of(models, "tiny-en-de")
    assert manifest["source"] == {"hub_id": REPO, "revision": hub.commit}
    assert manifest["pairs"] == [["en", "de"]] and manifest["quantization"] == "int8"
    assert manifest["license"] == "cc-by-4.0"
    _translates(models, "tiny-en-de")

    # pulling it again is a no-op that asks the hub nothing
    seen = len(hub.requests)
    again = _pull(cli, pull_env, tmp_path, "--defaults")
    assert again.returncode == 0 and "already in the store" in again.stderr
    assert len(hub.requests) == seen


def test_a_failed_pull_resumes_without_fetching_completed_files_again(
    cli: Callable, hub: HubStandIn, pull_env: dict[str, str], tmp_path: Path, checkpoint_files: dict[str, bytes]
) -> None:
    hub.refuse_get.add("model.safetensors")
    failed = _pull(cli, pull_env, tmp_path, "tiny-en-de")
    assert failed.returncode == 1
    assert "run the pull again" in failed.stderr
    assert not (tmp_path / "models" / "tiny-en-de").exists()
    assert len(hub.gets("config.json")) == 1
    fetched = {name: len(hub.gets(name)) for name in checkpoint_files}

    hub.refuse_get.clear()
    result = _pull(cli, pull_env, tmp_path, "tiny-en-de")
    assert result.returncode == 0, result.stderr
    # only the file that failed was fetched again; what the first run completed was kept
    fetched_again = {name: len(hub.gets(name)) - n for name, n in fetched.items()}
    assert fetched_again == {name: int(name == "model.safetensors") for name in checkpoint_files}
    assert (tmp_path / "models" / "tiny-en-de" / "model.bin").is_file()


def test_pull_refuses_a_pinned_revision_the_hub_lacks_or_misreports(
    cli: Callable, hub: HubStandIn, pull_env: dict[str, str], tmp_path: Path
) -> None:
    gone = _pull(cli, pull_env, tmp_path, "tiny-gone")
    assert gone.returncode == 1
    assert f"revision {'0' * 40} of {REPO} is not on the hub" in gone.stderr

    other = commit_id("someone rewrote history")
    hub.answer_commit[REPO] = other
    mismatch = _pull(cli, pull_env, tmp_path, "tiny-en-de")
    assert mismatch.returncode == 1
    assert "revision mismatch" in mismatch.stderr and other in mismatch.stderr
    assert not hub.gets("model.safetensors")  # nothing was downloaded from the wrong commit
    assert not (tmp_path / "models" / "tiny-en-de").exists()


def test_a_non_commercial_model_needs_the_license_accepted(
    cli: Callable, hub: HubStandIn, pull_env: dict[str, str], tmp_path: Path
) -> None:
    refused = _pull(cli, pull_env, tmp_path, "tiny-nc")
    assert refused.returncode == 2
    assert "CC-BY-NC-4.0: NON-COMMERCIAL use only" in refused.stderr
    assert "--accept-license" in refused.stderr
    assert hub.requests == []  # nothing downloaded before the license is accepted

    accepted = _pull(cli, pull_env, tmp_path, "tiny-nc", "--accept-license")
    assert accepted.returncode == 0, accepted.stderr
    assert manifest_of(tmp_path / "models", "tiny-nc")["license"] == "cc-by-nc-4.0"


def test_license_confirmation_is_asked_before_anything_is_downloaded(tmp_path: Path) -> None:
    from models.catalogue import Catalogue
    from models.exceptions import LicenseNotAccepted
    from models.pull import pull

    (tmp_path / "c.json").write_text(json.dumps({"format": 1, "defaults": [], "models": [
        _entry("tiny-nc", commit_id("x"), license="cc-by-nc-4.0", commercial_use=False)]}))
    asked: list[str] = []
    with pytest.raises(LicenseNotAccepted, match="--accept-license"):
        pull("tiny-nc", tmp_path / "models", catalogue=Catalogue.load(tmp_path / "c.json"),
             confirm=lambda notice: asked.append(notice) or False)
    assert len(asked) == 1 and "NON-COMMERCIAL" in asked[0]


def test_pull_installs_a_ready_ctranslate2_conversion(
    cli: Callable, hub: HubStandIn, pull_env: dict[str, str], tmp_path: Path
) -> None:
    result = _pull(cli, pull_env, tmp_path, "tiny-ct2")
    assert result.returncode == 0, result.stderr
    assert not any(f"/{REPO}/" in r.path for r in hub.requests)  # the checkpoint was not needed
    manifest = manifest_of(tmp_path / "models", "tiny-ct2")
    assert manifest["source"] == {"hub_id": CT2_REPO, "revision": hub.ct2_commit}
    assert manifest["pairs"] == [["en", "de"]] and manifest["quantization"] == "int8"
    assert manifest["tokenizer"]["type"] == "sentencepiece"
    _translates(tmp_path / "models", "tiny-ct2")


def test_pull_errors_for_unknown_names_and_an_unreachable_hub(
    cli: Callable, pull_env: dict[str, str], tmp_path: Path
) -> None:
    unknown = _pull(cli, pull_env, tmp_path, "no-such-model")
    assert unknown.returncode == 2 and "not in the catalogue" in unknown.stderr
    bad = _pull(cli, pull_env, tmp_path, "../etc")
    assert bad.returncode == 2
    assert _pull(cli, pull_env, tmp_path).returncode == 2  # nothing named

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    offline = _pull(cli, {**pull_env, "HF_ENDPOINT": f"http://127.0.0.1:{closed}"}, tmp_path, "tiny-en-de")
    assert offline.returncode == 1
    assert "cannot reach the hub" in offline.stderr
