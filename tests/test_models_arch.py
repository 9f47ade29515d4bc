"""Every real architecture through `babelwire models convert` and the pipeline.

Tiny random-weight checkpoints (tests/checkpoints_arch.py) of Marian (single and
multi-target), M2M100, NLLB, BART, PEGASUS, T5 and mT5 are built once per session,
converted with the CLI, and run through `pipeline.process.process` with `ModelEngines`.
Random weights give junk text, so the tests assert what the code decides — which model
serves each target and the summary, what the manifest says — plus non-empty, deterministic
output; never the words.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests import checkpoints_arch as arch
from tests.models_cli_helpers import manifest_of, models_env, run_babelwire

# checkpoint name -> (builder kwargs, extra convert CLI args, store name)
CHECKPOINTS = {
    "marian": ({}, [], "tiny-marian-en-de"),
    "marian_multi": ({"target_lang": "mul", "target_tokens": [">>es<<", ">>it<<", ">>pt<<", ">>pt_br<<"]}, [], "tiny-marian-en-mul"),
    "m2m100": ({}, [], "tiny-m2m100"),
    "nllb": ({}, [], "tiny-nllb"),
    "bart": ({}, [], "tiny-bart"),
    "pegasus": ({}, [], "tiny-pegasus"),
    "t5": ({}, [], "tiny-t5"),
    "mt5": ({}, ["--source", "de,fr"], "tiny-mt5"),
}

TEXT_EN = (
    "The council approved the new budget on Tuesday evening. Heavy rain flooded several "
    "streets in the old town. The minister said the talks would continue next week."
)
TEXT_DE = (
    "Der Rat hat den neuen Haushalt am Dienstagabend gebilligt. Starker Regen hat mehrere "
    "Straßen der Altstadt überflutet."
)


def _build(name: str, root: Path) -> Path:
    kwargs = CHECKPOINTS[name][0]
    if name == "marian_multi":
        return arch.build_marian(root / name, **kwargs)
    if name == "mt5":
        return arch.build_t5(root / name, multilingual=True)
    return arch.BUILDERS[name](root / name)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {name: _build(name, root) for name in CHECKPOINTS}


@pytest.fixture(scope="session")
def converted(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All checkpoints converted through `babelwire models convert` into one directory."""
    store = tmp_path_factory.mktemp("converted")
    for name, (_, extra, store_name) in CHECKPOINTS.items():
        result = run_babelwire(
            ["models", "convert", str(checkpoints[name]), "--name", store_name, *extra], models_env(store)
        )
        assert result.exit_code == 0, f"{name}: {result.output}"
        assert store_name in result.stdout
    return store


def _store_with(converted: Path, tmp_path: Path, names: list[str]) -> Path:
    """A store holding some of the converted models (links, as an admin might make)."""
    store = tmp_path / "store"
    store.mkdir()
    for name in names:
        (store / name).symlink_to(converted / name, target_is_directory=True)
    return store


def _process(store: Path, article: dict):
    from models.engines import ModelEngines
    from pipeline.article import validate_article
    from pipeline.process import process

    engines = ModelEngines.open(store, compute_type="int8", threads=1)
    return process(validate_article(article), engines)


# --- convert: what the manifests say ---------------------------------------------------------


def test_each_architecture_converts_with_family_tokenizer_and_languages(converted: Path) -> None:
    m = {name: manifest_of(converted, store_name) for name, (_, _, store_name) in CHECKPOINTS.items()}
    assert {k: v["family"] for k, v in m.items()} == {
        "marian": "marian", "marian_multi": "marian", "m2m100": "m2m100", "nllb": "nllb",
        "bart": "bart", "pegasus": "pegasus", "t5": "t5", "mt5": "mt5",
    }
    assert all(v["quantization"] == "int8" for v in m.values())
    # Marian: languages from tokenizer_config.json (source_lang/target_lang)
    assert m["marian"]["pairs"] == [["en", "de"]] and m["marian"]["target_selection"] == "none"
    assert m["marian"]["tokenizer"] == {"type": "sentencepiece", "source": "source.spm", "target": "target.spm", "file": None}
    # multi-target Marian: targets from the >>xx<< tokens; the plain >>pt<< wins over >>pt_br<<
    assert m["marian_multi"]["sources"] == ["en"]
    assert m["marian_multi"]["targets"] == ["es", "it", "pt"]
    assert m["marian_multi"]["target_selection"] == "source_token"
    assert m["marian_multi"]["language_tokens"] == {"es": ">>es<<", "it": ">>it<<", "pt": ">>pt<<"}
    # M2M100: the 100 __xx__ tokens; "__ns__" is Northern Sotho (nso)
    m2m = m["m2m100"]
    assert len(m2m["sources"]) == len(m2m["targets"]) == 100
    assert m2m["language_tokens"]["de"] == "__de__" and m2m["language_tokens"]["nso"] == "__ns__"
    assert m2m["target_selection"] == "prefix_token" and m2m["source_language_token"] is True
    assert m2m["tokenizer"]["type"] == "sentencepiece"
    # NLLB: FLORES-200 tokens mapped to ISO codes; the news variant wins (zho_Hans over zho_Hant)
    nllb = m["nllb"]
    assert nllb["language_tokens"]["de"] == "deu_Latn" and nllb["language_tokens"]["zh"] == "zho_Hans"
    assert nllb["language_tokens"]["ar"] == "arb_Arab"
    assert {"en", "de", "fr", "sw", "vi"} <= set(nllb["targets"])
    assert nllb["tokenizer"]["type"] == "tokenizer.json"
    # summarizers
    for name in ("bart", "pegasus", "t5"):
        assert m[name]["task"] == "summarization" and m[name]["languages"] == ["en"]
        assert m[name]["tokenizer"] == {"type": "tokenizer.json", "source": None, "target": None, "file": "tokenizer.json"}
    assert m["t5"]["source_prefix"] == "summarize: "
    assert m["mt5"]["languages"] == ["de", "fr"] and m["mt5"]["source_prefix"] == ""
    assert m["bart"]["source"]["file"].endswith("bart")
    for name, (_, _, store_name) in CHECKPOINTS.items():
        assert (converted / store_name / "model.bin").is_file()


def test_a_checkpoint_without_tokenizer_json_gets_one_made_from_sentencepiece(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """A checkpoint with only spiece.model: transformers writes the tokenizer.json."""
    src = tmp_path / "t5-spm-only"
    shutil.copytree(checkpoints["t5"], src)
    (src / "tokenizer.json").unlink()
    store = tmp_path / "store"
    result = run_babelwire(["models", "convert", str(src), "--name", "t5-from-spm"], models_env(store))
    assert result.exit_code == 0, result.output
    assert json.loads((store / "t5-from-spm" / "tokenizer.json").read_text())["model"]["type"] == "Unigram"


def test_convert_fails_clearly_when_languages_are_unknown(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "anonymous-marian"
    shutil.copytree(checkpoints["marian"], src)
    config = json.loads((src / "tokenizer_config.json").read_text())
    config.pop("source_lang", None), config.pop("target_lang", None)
    (src / "tokenizer_config.json").write_text(json.dumps(config))
    store = tmp_path / "store"
    result = run_babelwire(["models", "convert", str(src), "--name", "anon"], models_env(store))
    assert result.exit_code == 2
    assert "--source" in result.stderr and "--target" in result.stderr
    assert not (store / "anon").exists()
    # the flags tell what the checkpoint does not
    result = run_babelwire(
        ["models", "convert", str(src), "--name", "anon", "--source", "en", "--target", "fr"], models_env(store)
    )
    assert result.exit_code == 0, result.output
    assert manifest_of(store, "anon")["pairs"] == [["en", "fr"]]

    result = run_babelwire(["models", "convert", str(checkpoints["mt5"]), "--name", "mt5-x"], models_env(store))
    assert result.exit_code == 2 and "--source" in result.stderr


def test_convert_refuses_bad_names_flags_and_directories(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = models_env(store)
    for bad in ("../x", "/etc", "a/b"):
        result = run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", bad], env)
        assert result.exit_code == 2 and "invalid model name" in result.stderr, bad
    assert not (tmp_path / "x").exists()
    result = run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", "m", "--quantization", "int3"], env)
    assert result.exit_code == 2 and "--quantization" in result.stderr
    result = run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", "m", "--target", "xx-nope"], env)
    assert result.exit_code == 2 and "unknown language code" in result.stderr
    result = run_babelwire(["models", "convert", str(tmp_path), "--name", "m"], env)
    assert result.exit_code == 2 and "config.json" in result.stderr
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    result = run_babelwire(["models", "convert", str(tmp_path / "gpt"), "--name", "m"], env)
    assert result.exit_code == 2 and "'gpt2' is not supported" in result.stderr
    # an existing model is replaced only with --force
    assert run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", "m"], env).exit_code == 0
    result = run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", "m"], env)
    assert result.exit_code == 2 and "--force" in result.stderr
    assert run_babelwire(["models", "convert", str(checkpoints["marian"]), "--name", "m", "--force"], env).exit_code == 0
    assert sorted(p.name for p in store.iterdir()) == ["m"]  # no temporary directories left


def test_convert_without_the_convert_extra_names_the_install_command(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.convert import convert_checkpoint
    from models.exceptions import ConvertError

    monkeypatch.setitem(__import__("sys").modules, "transformers", None)  # as if not installed
    with pytest.raises(ConvertError, match=r"pip install 'babelwire\[convert\]'"):
        convert_checkpoint(checkpoints["marian"], tmp_path / "store", "m")
    assert not (tmp_path / "store" / "m").exists()


# --- the pipeline with them -------------------------------------------------------------------


def test_pipeline_routes_direct_multi_target_and_many_to_many_and_bart_summary(converted: Path, tmp_path: Path) -> None:
    store = _store_with(converted, tmp_path, ["tiny-marian-en-de", "tiny-marian-en-mul", "tiny-m2m100", "tiny-bart"])
    article = {"title": "Council approves budget", "text": TEXT_EN, "lang": "en", "targets": ["de", "es", "fr"]}
    result = _process(store, article)
    assert result.status == "done", result.errors
    assert result.models == {
        "summary": "tiny-bart",            # the English summarizer
        "de": "tiny-marian-en-de",         # a direct pair
        "es": "tiny-marian-en-mul",        # a multi-target OPUS-MT model (>>es<<)
        "fr": "tiny-m2m100",               # no direct model: many-to-many
    }
    for lang in ("en", "de", "es", "fr"):
        assert result.summary[lang].strip(), lang
        assert result.title[lang].strip(), lang
    again = _process(store, article)
    assert (again.summary, again.title, again.models) == (result.summary, result.title, result.models)


def test_pipeline_summarizes_an_unserved_language_through_english(converted: Path, tmp_path: Path) -> None:
    store = _store_with(converted, tmp_path, ["tiny-marian-en-de", "tiny-m2m100", "tiny-bart"])
    result = _process(store, {"title": "Rat billigt Haushalt", "text": TEXT_DE, "lang": "de", "targets": ["fr"]})
    assert result.status == "done", result.errors
    assert result.models["summary_pivot"] == "tiny-m2m100"  # de→en for the English summarizer
    assert result.models["summary"] == "tiny-bart"
    assert result.models["fr"] == "tiny-m2m100"
    assert result.models["de"] == "tiny-marian-en-de"  # the summary back in the article's language
    assert result.summary["fr"].strip() and result.summary["de"].strip() and result.title["fr"].strip()


def test_pipeline_with_nllb_pegasus_and_mt5(converted: Path, tmp_path: Path) -> None:
    store = _store_with(converted, tmp_path, ["tiny-nllb", "tiny-pegasus", "tiny-mt5"])
    en = _process(store, {"title": "Council approves budget", "text": TEXT_EN, "lang": "en", "targets": ["de", "sw"]})
    assert en.status == "done", en.errors
    assert en.models == {"summary": "tiny-pegasus", "de": "tiny-nllb", "sw": "tiny-nllb"}
    de = _process(store, {"title": "Rat billigt Haushalt", "text": TEXT_DE, "lang": "de", "targets": ["en", "fr"]})
    assert de.status == "done", de.errors
    assert de.models == {"summary": "tiny-mt5", "en": "tiny-nllb", "fr": "tiny-nllb"}
    for result in (en, de):
        assert all(text.strip() for text in result.summary.values())
        assert all(text.strip() for text in result.title.values())


def test_pipeline_with_t5_summarizer_and_a_missing_target(converted: Path, tmp_path: Path) -> None:
    store = _store_with(converted, tmp_path, ["tiny-t5", "tiny-marian-en-de"])
    result = _process(store, {"title": "Council approves budget", "text": TEXT_EN, "lang": "en", "targets": ["de", "ja"]})
    assert result.status == "partial"
    assert result.models == {"summary": "tiny-t5", "de": "tiny-marian-en-de"}
    assert "babelwire models pull opus-mt-en-jap" in result.errors["ja"]
    assert result.summary["en"].strip() and result.summary["de"].strip()


# --- Argos Translate packages ------------------------------------------------------------------


def _argos_package(model_dir: Path, path: Path, *, top: str = "translate-en_de-1_0", metadata: dict | None = None,
                   extra: dict[str, bytes] | None = None) -> Path:
    """An .argosmodel in Argos Translate's layout, from a converted CTranslate2 model."""
    meta = {"package_version": "1.0", "argos_version": "1.0", "from_code": "en", "to_code": "de",
            "from_name": "English", "to_name": "German"}
    meta.update(metadata or {})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}/metadata.json", json.dumps(meta))
        z.writestr(f"{top}/README.md", "A tiny test package.\n")
        for f in ("model.bin", "config.json", "shared_vocabulary.json"):
            z.write(model_dir / f, f"{top}/model/{f}")
        z.write(model_dir / "source.spm", f"{top}/sentencepiece.model")
        z.writestr(f"{top}/stanza/readme.txt", "sentence splitter, unused")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_argos_package_imports_and_translates(converted: Path, tmp_path: Path) -> None:
    package = _argos_package(converted / "tiny-marian-en-de", tmp_path / "translate-en_de-1_0.argosmodel")
    store = tmp_path / "store"
    result = run_babelwire(["models", "import", str(package)], models_env(store))
    assert result.exit_code == 0, result.output
    manifest = manifest_of(store, "argos-en-de")
    assert manifest["pairs"] == [["en", "de"]] and manifest["task"] == "translation"
    assert manifest["tokenizer"]["source"] == "sentencepiece.model" and manifest["replace_unknowns"] is True
    assert manifest["source"]["argos_package_version"] == "1.0"
    assert not (store / "argos-en-de" / "stanza").exists()  # only what babelwire uses is extracted

    first = _process(store, {"title": "Council approves budget", "text": TEXT_EN, "lang": "en", "targets": ["de"]})
    assert first.models["de"] == "argos-en-de" and first.status == "done"
    assert first.summary["de"].strip() and first.title["de"].strip()
    assert _process(store, {"title": "Council approves budget", "text": TEXT_EN, "lang": "en", "targets": ["de"]}).summary == first.summary


@pytest.mark.parametrize(
    "extra, metadata, message",
    [
        ({"translate-en_de-1_0/../../evil.txt": b"x"}, None, "escapes the package"),
        ({"/etc/evil": b"x"}, None, "absolute paths"),
        ({"other-top/file.txt": b"x"}, None, "one top-level directory"),
        (None, {"from_code": "xx-nope"}, "from_code"),
        (None, {"to_code": None}, "to_code is required"),
    ],
)
def test_argos_import_refuses_unsafe_or_invalid_packages(
    converted: Path, tmp_path: Path, extra: dict | None, metadata: dict | None, message: str
) -> None:
    package = _argos_package(converted / "tiny-marian-en-de", tmp_path / "p.argosmodel", metadata=metadata, extra=extra)
    store = tmp_path / "store"
    result = run_babelwire(["models", "import", str(package)], models_env(store))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "evil.txt").exists() and not any(store.glob("*/babelwire.json"))


def test_argos_import_refuses_links_and_oversized_packages(converted: Path, tmp_path: Path) -> None:
    from models.argos import import_argos
    from models.exceptions import ArgosError

    package = _argos_package(converted / "tiny-marian-en-de", tmp_path / "p.argosmodel")
    with pytest.raises(ArgosError, match="more than 1,000 bytes"):
        import_argos(package, tmp_path / "store", max_total_bytes=1_000)
    link = zipfile.ZipInfo("translate-en_de-1_0/model/link")
    link.external_attr = (0o120777 << 16)  # a symlink member
    with zipfile.ZipFile(package, "a") as z:
        z.writestr(link, "/etc/passwd")
    with pytest.raises(ArgosError, match="links"):
        import_argos(package, tmp_path / "store")
    (tmp_path / "not-a-zip.argosmodel").write_text("hello")
    with pytest.raises(ArgosError, match="not a zip"):
        import_argos(tmp_path / "not-a-zip.argosmodel", tmp_path / "store")


# --- list / verify / remove ----------------------------------------------------------------------


def test_list_verify_and_remove(converted: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(converted / "tiny-marian-en-de", store / "tiny-marian-en-de")
    shutil.copytree(converted / "tiny-bart", store / "tiny-bart")
    env = models_env(store)
    listed = json.loads(run_babelwire(["models", "list", "--json"], env).stdout)
    assert [(m["name"], m["task"], m["family"]) for m in listed] == [
        ("tiny-bart", "summarization", "bart"), ("tiny-marian-en-de", "translation", "marian")]
    assert listed[1]["pairs"] == [["en", "de"]] and listed[1]["size_bytes"] > 0

    for name, direction in (("tiny-marian-en-de", "en→de"), ("tiny-bart", "summarize en")):
        result = run_babelwire(["models", "verify", name, "--json"], env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ok"] is True and report["direction"] == direction
        assert report["output_tokens"] > 0 and report["tokens_per_second"] > 0 and report["load_seconds"] > 0
        assert report["sample_output"].strip()

    missing = run_babelwire(["models", "verify", "opus-mt-en-fr"], env)
    assert missing.exit_code == 2 and "babelwire models pull opus-mt-en-fr" in missing.stderr
    # a model whose weights are broken fails verification (exit 1), it does not crash the command
    (store / "tiny-bart" / "model.bin").write_bytes(b"not a model")
    broken = run_babelwire(["models", "verify", "tiny-bart", "--json"], env)
    assert broken.exit_code == 1 and json.loads(broken.stdout)["error"]

    assert run_babelwire(["models", "remove", "../tiny-bart"], env).exit_code == 2
    assert run_babelwire(["models", "remove", "tiny-bart"], env).exit_code == 0
    assert not (store / "tiny-bart").exists() and (store / "tiny-marian-en-de").exists()
    assert run_babelwire(["models", "remove", "tiny-bart"], env).exit_code == 2


def test_published_generation_settings_reach_the_manifest(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """DistilBART-CNN keeps beam search settings in config.json; newer checkpoints in
    generation_config.json. Either way the manifest decodes the model as published."""
    src = tmp_path / "bart-cnn-like"
    shutil.copytree(checkpoints["bart"], src)
    (src / "generation_config.json").unlink()
    config = json.loads((src / "config.json").read_text())
    config.update(num_beams=4, length_penalty=2.0, min_length=56, max_length=142, no_repeat_ngram_size=3)
    (src / "config.json").write_text(json.dumps(config))
    store = tmp_path / "store"
    assert run_babelwire(["models", "convert", str(src), "--name", "b"], models_env(store)).exit_code == 0
    assert manifest_of(store, "b")["generation"] == {
        "beam_size": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "min_decoding_length": 55}
    (src / "generation_config.json").write_text(json.dumps({"num_beams": 2, "repetition_penalty": 1.2}))
    assert run_babelwire(["models", "convert", str(src), "--name", "c"], models_env(store)).exit_code == 0
    assert manifest_of(store, "c")["generation"] == {"beam_size": 2, "repetition_penalty": 1.2}
