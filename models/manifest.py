"""`babelwire.json`: what a model in the store is and how to drive it (docs/contracts.md)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.exceptions import ManifestError
from pipeline import safe_json

MANIFEST_FILE = "babelwire.json"
MANIFEST_FORMAT = 1

TASKS = ("translation", "summarization", "embedding")
FAMILIES = ("marian", "m2m100", "nllb", "bart", "pegasus", "t5", "mt5")
# How the wanted target language is told to the model:
#   none          the model has one target language
#   prefix_token  decoding starts with a language token (NLLB "deu_Latn", M2M100 "__de__")
#   source_token  the source starts with a ">>deu<<" token (multi-target OPUS-MT)
TARGET_SELECTION = ("none", "prefix_token", "source_token")
TOKENIZER_TYPES = ("sentencepiece", "tokenizer.json")

# A model name is a single path component: letters, digits, dot, dash, underscore.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """Model names come from the store and never act as paths (`../x`, `/etc` are refused)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ManifestError(
            f"invalid model name {name!r}: use letters, digits, '.', '-', '_' (no paths)"
        )
    return name


@dataclass
class TokenizerSpec:
    type: str  # "sentencepiece" | "tokenizer.json"
    # sentencepiece: source and target model files (the same file for shared vocabularies)
    source: str | None = None
    target: str | None = None
    # tokenizer.json: one file for both sides
    file: str | None = None


@dataclass
class Manifest:
    name: str
    task: str
    family: str
    tokenizer: TokenizerSpec
    # translation: explicit pairs [[src, tgt], ...]; many-to-many: every source to every target
    pairs: list[list[str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    # summarization: languages it summarizes (output in the same language)
    languages: list[str] = field(default_factory=list)
    target_selection: str = "none"
    # ISO code -> the model's own language token ("__de__", "deu_Latn", ">>deu<<")
    language_tokens: dict[str, str] = field(default_factory=dict)
    # the source starts with its language token (M2M100, NLLB)
    source_language_token: bool = False
    # text prepended to the source (T5: "summarize: ")
    source_prefix: str = ""
    input_limit: int = 512
    # replace <unk> outputs by the attended source token (word-level toy models)
    replace_unknowns: bool = False
    # decoding settings the model was published with, in CTranslate2's names (beam_size,
    # length_penalty, repetition_penalty, no_repeat_ngram_size, min_decoding_length), e.g.
    # from the checkpoint's generation_config.json; they override the engine's defaults
    generation: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # {"hub_id", "revision"} or {"file"}
    license: str = "unknown"
    quantization: str = "none"
    format: int = MANIFEST_FORMAT

    def __post_init__(self) -> None:
        validate_name(self.name)
        if isinstance(self.tokenizer, dict):
            self.tokenizer = TokenizerSpec(**self.tokenizer)
        if self.task not in TASKS:
            raise ManifestError(f"{self.name}: task must be one of {TASKS} (got {self.task!r})")
        if self.family not in FAMILIES:
            raise ManifestError(f"{self.name}: family must be one of {FAMILIES} (got {self.family!r})")
        if self.target_selection not in TARGET_SELECTION:
            raise ManifestError(
                f"{self.name}: target_selection must be one of {TARGET_SELECTION} (got {self.target_selection!r})"
            )
        if self.tokenizer.type not in TOKENIZER_TYPES:
            raise ManifestError(f"{self.name}: tokenizer.type must be one of {TOKENIZER_TYPES}")
        if self.task == "translation" and not (self.pairs or (self.sources and self.targets)):
            raise ManifestError(f"{self.name}: a translation model needs pairs or sources+targets")
        if self.task == "summarization" and not self.languages:
            raise ManifestError(f"{self.name}: a summarization model needs languages")

    def translation_pairs(self) -> set[tuple[str, str]]:
        pairs = {(s, t) for s, t in self.pairs}
        pairs |= {(s, t) for s in self.sources for t in self.targets if s != t}
        return pairs

    @property
    def many_to_many(self) -> bool:
        return len(self.sources) > 1 and len(self.targets) > 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / MANIFEST_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> "Manifest":
        path = Path(model_dir) / MANIFEST_FILE
        try:
            data = safe_json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ManifestError(f"{model_dir}: no {MANIFEST_FILE}") from None
        except ValueError as exc:  # bad JSON or UTF-8, nesting too deep
            raise ManifestError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: must be a JSON object")
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ManifestError(f"{path}: {exc}") from None
