"""A Hugging Face checkpoint directory → a model in the store (docs/contracts.md, Model store).

`convert_checkpoint` detects the architecture family from `config.json` (`model_type`), the
tokenizer from the files, the languages from what the checkpoint says (Marian
`tokenizer_config.json` and `>>xx<<` tokens, M2M100 `__xx__` and NLLB `xxx_Yyyy` language
tokens, the `opus-mt-xx-yy` name) unless the caller names them, converts the weights with
CTranslate2's `TransformersConverter` (int8 by default), copies the tokenizer files the
engines read and writes `babelwire.json`. The new model appears in the store atomically
(built in a temporary directory, then renamed), so a failed conversion leaves nothing
behind and a running worker never sees a half-written model.

Needs the `convert` extra (transformers, torch); everything else in babelwire runs without.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.catalogue import M2M100_CODE_TO_ISO, NLLB_LANGUAGE_CODES
from models.exceptions import ConvertError, ManifestError
from models.manifest import Manifest, TokenizerSpec, validate_name
from models.store import ModelStore
from pipeline.languages import KNOWN_CODES, normalize_code

log = logging.getLogger(__name__)

CONVERT_EXTRA_HINT = "pip install 'babelwire[convert]'"

# CTranslate2 quantizations; "none" keeps the checkpoint's float32 weights.
QUANTIZATIONS = (
    "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32", "none",
)

# config.json model_type -> babelwire family (NLLB is an M2M100 architecture; told apart by
# its tokenizer).
MODEL_TYPES = {
    "marian": "marian",
    "m2m_100": "m2m100",
    "bart": "bart",
    "pegasus": "pegasus",
    "t5": "t5",
    "mt5": "mt5",
}
TRANSLATION_FAMILIES = frozenset({"marian", "m2m100", "nllb"})
SUMMARIZATION_FAMILIES = frozenset({"bart", "pegasus", "t5", "mt5"})
# Checkpoints of these families are English-only by construction of their pretraining
# vocabularies (GPT-2 BPE for BART, C4 SentencePiece for T5, PEGASUS' English corpus).
ENGLISH_ONLY_FAMILIES = frozenset({"bart", "pegasus", "t5"})

# Config attributes CTranslate2's loaders read that transformers 5 no longer sets by
# default; values are those of the original checkpoints' configs.
_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "bart": {"normalize_before": False, "normalize_embedding": True},
    "pegasus": {"normalize_before": True, "normalize_embedding": False},
}

NLLB_TOKEN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
M2M100_TOKEN = re.compile(r"^__([a-z]{2,3})__$")
MARIAN_TOKEN = re.compile(r"^>>([A-Za-z]{2,3}(?:_[A-Za-z]+)?)<<$")
OPUS_MT_NAME = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$")

# ISO 639-2/3 codes OPUS-MT's `>>xxx<<` tokens use, where they differ from the NLLB
# (FLORES-200) code's language part.
_ISO3_EXTRA = {
    "ara": "ar", "fas": "fa", "msa": "ms", "swa": "sw", "zho": "zh", "nor": "no", "sqi": "sq",
    "aze": "az", "uzb": "uz", "mon": "mn", "orm": "om", "pus": "ps", "kur": "ku", "nep": "ne",
    "est": "et", "lav": "lv", "grn": "gn", "que": "qu", "fil": "tl", "cmn": "zh",
}


_FLORES_TO_ISO = {flores: iso for iso, flores in NLLB_LANGUAGE_CODES.items()}
_ISO3_TO_ISO = {**{flores.split("_")[0]: iso for iso, flores in NLLB_LANGUAGE_CODES.items()}, **_ISO3_EXTRA}


def iso_from_code(code: str) -> str | None:
    """The ISO code babelwire uses for a model's language code (`de`, `deu`, `pt_br`,
    `deu_Latn`, M2M100's `ns`), or None for a language babelwire does not know."""
    code = code.strip()
    if code in _FLORES_TO_ISO:
        return _FLORES_TO_ISO[code]
    base = normalize_code(code.split("_")[0])
    if base in M2M100_CODE_TO_ISO:
        return M2M100_CODE_TO_ISO[base]
    if len(base) == 3 and base in _ISO3_TO_ISO:
        return _ISO3_TO_ISO[base]
    return base if base in KNOWN_CODES else None


@dataclass
class Checkpoint:
    """What a checkpoint directory says about itself."""

    path: Path
    config: dict[str, Any]
    family: str
    files: set[str]
    tokenizer_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def inspect(cls, path: Path) -> "Checkpoint":
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ConvertError(f"{path}: no config.json; is this a Hugging Face checkpoint directory?")
        config = _read_json(config_file)
        model_type = config.get("model_type")
        family = MODEL_TYPES.get(model_type or "")
        if family is None:
            raise ConvertError(
                f"{path}: model_type {model_type!r} is not supported; supported: "
                + ", ".join(sorted(MODEL_TYPES))
            )
        files = {p.name for p in path.iterdir() if p.is_file()}
        tokenizer_config = _read_json(path / "tokenizer_config.json") if "tokenizer_config.json" in files else {}
        if family == "m2m100" and _is_nllb(config, tokenizer_config, path, files):
            family = "nllb"
        return cls(path, config, family, files, tokenizer_config)

    @property
    def has_weights(self) -> bool:
        return any(
            f.endswith(".safetensors") or f in ("pytorch_model.bin", "pytorch_model.bin.index.json")
            for f in self.files
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path}: cannot read ({exc})") from None


def _is_nllb(config: dict, tokenizer_config: dict, path: Path, files: set[str]) -> bool:
    names = {str(config.get("tokenizer_class", "")), str(tokenizer_config.get("tokenizer_class", ""))}
    if any(n.startswith("Nllb") for n in names):
        return True
    return "tokenizer.json" in files and any(NLLB_TOKEN.match(t) for t in _tokenizer_json_added(path))


def _tokenizer_json_added(path: Path) -> list[str]:
    file = Path(path) / "tokenizer.json"
    if not file.is_file():
        return []
    data = _read_json(file)
    return [t["content"] for t in data.get("added_tokens", [])]


# --- languages -------------------------------------------------------------------------


@dataclass
class Languages:
    pairs: list[list[str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    target_selection: str = "none"
    language_tokens: dict[str, str] = field(default_factory=dict)
    source_language_token: bool = False


def language_token_map(tokens: list[str], pattern: re.Pattern[str]) -> dict[str, str]:
    """ISO code -> the model's token for it. Where several tokens map to one code, the
    plain one wins over a variant (`>>pt<<` over `>>pt_br<<`, `zho_Hans` over `zho_Hant`)."""
    mapping: dict[str, str] = {}
    plain: set[str] = set()
    for token in tokens:
        match = pattern.match(token)
        if not match:
            continue
        code = match.group(1) if pattern.groups else token
        iso = iso_from_code(code)
        if iso is None or iso in plain:
            continue
        is_plain = NLLB_LANGUAGE_CODES.get(iso) == token if NLLB_TOKEN.match(token) else "_" not in code
        if iso not in mapping or is_plain:
            mapping[iso] = token
            if is_plain:
                plain.add(iso)
    return mapping


def _codes(values: list[str] | None, what: str) -> list[str]:
    out: list[str] = []
    for value in values or []:
        for code in str(value).split(","):
            code = normalize_code(code)
            if not code:
                continue
            if code not in KNOWN_CODES:
                raise ConvertError(f"--{what}: unknown language code {code!r} (use ISO 639-1, e.g. 'de')")
            if code not in out:
                out.append(code)
    return out


def _marian_languages(ck: Checkpoint, name_hint: str, sources: list[str], targets: list[str]) -> Languages:
    vocab = _read_json(ck.path / "vocab.json") if "vocab.json" in ck.files else {}
    tokens = language_token_map(list(vocab), MARIAN_TOKEN)
    tc = ck.tokenizer_config
    said_source = iso_from_code(str(tc.get("source_lang", ""))) if tc.get("source_lang") else None
    said_target = iso_from_code(str(tc.get("target_lang", ""))) if tc.get("target_lang") else None
    named = OPUS_MT_NAME.search(name_hint.lower())
    if named:
        said_source = said_source or iso_from_code(named.group(1))
        said_target = said_target or iso_from_code(named.group(2))
    sources = sources or ([said_source] if said_source else [])
    if tokens:  # multi-target: the source starts with the wanted target's token
        targets = targets or sorted(tokens)
        missing = [t for t in targets if t not in tokens]
        if missing:
            raise ConvertError(f"the model has no >>xx<< token for {missing}; it has {sorted(tokens)}")
        if not sources:
            raise ConvertError(
                "cannot tell the source language(s) of this Marian model: pass --source (e.g. --source en)"
            )
        return Languages(
            sources=sources, targets=targets, target_selection="source_token",
            language_tokens={t: tokens[t] for t in targets},
        )
    targets = targets or ([said_target] if said_target else [])
    if not sources or not targets:
        raise ConvertError(
            "cannot tell this Marian model's languages (tokenizer_config.json has no "
            "source_lang/target_lang): pass --source and --target"
        )
    if len(targets) != 1:
        raise ConvertError("a Marian model without >>xx<< tokens has exactly one target language")
    return Languages(pairs=[[s, targets[0]] for s in sources if s != targets[0]])


def _many_to_many_languages(tokens: dict[str, str], sources: list[str], targets: list[str], what: str) -> Languages:
    if not tokens:
        raise ConvertError(f"no {what} language tokens found in the tokenizer files")
    unknown = [c for c in sources + targets if c not in tokens]
    if unknown:
        raise ConvertError(f"the model has no language token for {unknown}")
    sources = sources or sorted(tokens)
    targets = targets or sorted(tokens)
    used = set(sources) | set(targets)
    return Languages(
        sources=sources, targets=targets, target_selection="prefix_token", source_language_token=True,
        language_tokens={iso: tok for iso, tok in sorted(tokens.items()) if iso in used},
    )


def _m2m100_tokens(ck: Checkpoint) -> dict[str, str]:
    candidates = list(ck.tokenizer_config.get("additional_special_tokens") or [])
    candidates += _tokenizer_json_added(ck.path)
    if "vocab.json" in ck.files:
        candidates += list(_read_json(ck.path / "vocab.json"))
    if not any(M2M100_TOKEN.match(t) for t in candidates):
        # The tokenizer adds its `__xx__` tokens itself (transformers' M2M100 language list).
        from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

        codes = ck.tokenizer_config.get("language_codes", "m2m100")
        candidates = [f"__{c}__" for c in FAIRSEQ_LANGUAGE_CODES.get(codes, [])]
    return language_token_map(candidates, M2M100_TOKEN)


def _nllb_tokens(ck: Checkpoint) -> dict[str, str]:
    candidates = _tokenizer_json_added(ck.path) + list(ck.tokenizer_config.get("additional_special_tokens") or [])
    return language_token_map([t for t in candidates if NLLB_TOKEN.match(t)], NLLB_TOKEN)


def infer_languages(
    ck: Checkpoint, task: str, *, sources: list[str], targets: list[str], name_hint: str = ""
) -> Languages:
    if task == "summarization":
        languages = sources or targets
        if not languages and ck.family in ENGLISH_ONLY_FAMILIES:
            languages = ["en"]
        if not languages:
            raise ConvertError(
                f"cannot tell which languages this {ck.family} summarizer serves: pass --source "
                "(comma-separated, e.g. --source en,fr)"
            )
        return Languages(languages=languages)
    if ck.family == "marian":
        return _marian_languages(ck, name_hint, sources, targets)
    if ck.family == "m2m100":
        return _many_to_many_languages(_m2m100_tokens(ck), sources, targets, "M2M100 (__xx__)")
    if ck.family == "nllb":
        return _many_to_many_languages(_nllb_tokens(ck), sources, targets, "NLLB (xxx_Yyyy)")
    raise ConvertError(f"{ck.family} models are converted as summarizers (--task summarization)")


# --- tokenizer files -------------------------------------------------------------------


def copy_tokenizer(ck: Checkpoint, out_dir: Path) -> TokenizerSpec:
    """Copy what `models.tokenizer` reads: SentencePiece models for Marian and M2M100 (which
    have no tokenizer.json), a `tokenizer.json` for the others (made with transformers from
    the SentencePiece/BPE files when the checkpoint has none)."""
    if ck.family == "marian":
        for f in ("source.spm", "target.spm"):
            if f not in ck.files:
                raise ConvertError(f"{ck.path}: Marian checkpoint without {f}")
            shutil.copyfile(ck.path / f, out_dir / f)
        return TokenizerSpec(type="sentencepiece", source="source.spm", target="target.spm")
    if ck.family == "m2m100":
        if "sentencepiece.bpe.model" not in ck.files:
            raise ConvertError(f"{ck.path}: M2M100 checkpoint without sentencepiece.bpe.model")
        shutil.copyfile(ck.path / "sentencepiece.bpe.model", out_dir / "sentencepiece.bpe.model")
        return TokenizerSpec(type="sentencepiece", source="sentencepiece.bpe.model", target="sentencepiece.bpe.model")
    if "tokenizer.json" in ck.files:
        shutil.copyfile(ck.path / "tokenizer.json", out_dir / "tokenizer.json")
    else:
        require_convert_extra()
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(ck.path))
        if not getattr(tokenizer, "is_fast", False):
            raise ConvertError(f"{ck.path}: transformers has no fast tokenizer for this {ck.family} checkpoint")
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer.save_pretrained(tmp)
            shutil.copyfile(Path(tmp) / "tokenizer.json", out_dir / "tokenizer.json")
    return TokenizerSpec(type="tokenizer.json", file="tokenizer.json")


# --- conversion ------------------------------------------------------------------------


def require_convert_extra() -> None:
    missing = []
    for module in ("torch", "transformers"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConvertError(
            f"converting needs {' and '.join(missing)}, which babelwire leaves out by default: "
            f"{CONVERT_EXTRA_HINT}"
        )


def _converter(path: Path):
    """CTranslate2's converter, with the compatibility fixes transformers 5 needs."""
    from ctranslate2.converters import TransformersConverter

    class _Converter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            for key, value in _CONFIG_DEFAULTS.get(model.config.model_type, {}).items():
                if not hasattr(model.config, key):
                    setattr(model.config, key, value)
            return model

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            tokenizer = super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
            language_tokens = getattr(tokenizer, "lang_token_to_id", None)
            if language_tokens and not set(language_tokens) <= set(tokenizer.get_vocab()):
                # transformers 5's M2M100Tokenizer leaves its `__xx__` tokens out of
                # get_vocab(); CTranslate2 builds the model vocabulary from get_vocab().
                return _WithLanguageTokens(tokenizer, dict(language_tokens))
            return tokenizer

    return _Converter(str(path))


class _WithLanguageTokens:
    """A tokenizer whose vocabulary also lists its language tokens."""

    def __init__(self, tokenizer, language_tokens: dict[str, int]):
        self._tokenizer = tokenizer
        self._language_tokens = language_tokens

    def get_vocab(self) -> dict[str, int]:
        return {**self._tokenizer.get_vocab(), **self._language_tokens}

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)


def _input_limit(ck: Checkpoint) -> int:
    for key in ("max_position_embeddings", "n_positions"):
        value = ck.config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    limit = ck.tokenizer_config.get("model_max_length")
    if isinstance(limit, int) and 0 < limit < 100_000:
        return limit
    return 512  # T5/mT5: relative positions; 512 is what they were trained on


# Hugging Face generation settings -> CTranslate2 decoding options (`Manifest.generation`).
_GENERATION_KEYS = {
    "num_beams": "beam_size",
    "length_penalty": "length_penalty",
    "repetition_penalty": "repetition_penalty",
    "no_repeat_ngram_size": "no_repeat_ngram_size",
    "min_length": "min_decoding_length",
}


def generation_settings(ck: Checkpoint) -> dict[str, Any]:
    """How the model was published to decode: generation_config.json, else the same keys at
    the top of config.json (older checkpoints such as DistilBART-CNN keep them there)."""
    source = ck.config
    if "generation_config.json" in ck.files:
        source = _read_json(ck.path / "generation_config.json")
    settings: dict[str, Any] = {}
    for hf_key, ct2_key in _GENERATION_KEYS.items():
        value = source.get(hf_key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if hf_key == "min_length":
            value = int(value) - 1  # HF counts the decoder start token; CTranslate2 does not
            if value <= 0:
                continue
        elif hf_key in ("num_beams", "no_repeat_ngram_size"):
            value = int(value)
            if value < (1 if hf_key == "num_beams" else 0):
                continue
        elif value <= 0:
            continue
        settings[ct2_key] = value
    return settings


def _license_from_readme(path: Path) -> str | None:
    readme = path / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    match = re.search(r"^license:\s*(\S+)\s*$", front, flags=re.M)
    return match.group(1).strip("'\"") if match else None


def convert_checkpoint(
    src_dir: Path,
    store_root: Path,
    name: str,
    *,
    task: str | None = None,
    sources: list[str] | None = None,
    targets: list[str] | None = None,
    quantization: str = "int8",
    source_prefix: str | None = None,
    input_limit: int | None = None,
    license: str | None = None,
    source_info: dict[str, Any] | None = None,
    force: bool = False,
) -> Manifest:
    """Convert the checkpoint at `src_dir` into `store_root/<name>`; returns its manifest.

    `sources`/`targets` (ISO codes; for summarizers `sources` are the languages served)
    override what the checkpoint says. `source_info` is recorded in the manifest
    (`{"hub_id", "revision"}` for pulls); a local conversion records the directory.
    """
    validate_name(name)
    if quantization not in QUANTIZATIONS:
        raise ConvertError(f"--quantization must be one of {', '.join(QUANTIZATIONS)} (got {quantization!r})")
    src_dir = Path(src_dir).absolute()
    ck = Checkpoint.inspect(src_dir)
    if not ck.has_weights:
        raise ConvertError(f"{src_dir}: no weights (model.safetensors or pytorch_model.bin)")
    default_task = "translation" if ck.family in TRANSLATION_FAMILIES else "summarization"
    task = task or default_task
    if task != default_task:
        raise ConvertError(f"{ck.family} checkpoints are converted for {default_task}, not {task}")
    source_codes, target_codes = _codes(sources, "source"), _codes(targets, "target")
    hint = (source_info or {}).get("hub_id", "") or src_dir.name
    langs = infer_languages(ck, task, sources=source_codes, targets=target_codes, name_hint=hint)
    require_convert_extra()

    try:
        with ModelStore(Path(store_root)).staging(name, force=force) as out_dir:
            log.info("converting %s (%s) to CTranslate2, quantization %s", src_dir, ck.family, quantization)
            _converter(src_dir).convert(
                str(out_dir), quantization=None if quantization == "none" else quantization, force=True
            )
            tokenizer_spec = copy_tokenizer(ck, out_dir)
            if source_prefix is None:
                # Original T5 was trained multi-task with prefixes; mT5 fine-tunes (XLSum) use none.
                source_prefix = "summarize: " if ck.family == "t5" and task == "summarization" else ""
            manifest = Manifest(
                name=name,
                task=task,
                family=ck.family,
                tokenizer=tokenizer_spec,
                pairs=langs.pairs,
                sources=langs.sources,
                targets=langs.targets,
                languages=langs.languages,
                target_selection=langs.target_selection,
                language_tokens=langs.language_tokens,
                source_language_token=langs.source_language_token,
                source_prefix=source_prefix,
                input_limit=input_limit or _input_limit(ck),
                generation=generation_settings(ck),
                source=source_info or {"file": str(src_dir)},
                license=license or _license_from_readme(src_dir) or "unknown",
                quantization=quantization,
            )
            manifest.save(out_dir)
    except (FileExistsError, ManifestError) as exc:
        raise ConvertError(str(exc)) from None
    return manifest
