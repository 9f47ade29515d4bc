"""Text ⇄ the token strings CTranslate2 reads and writes, for each model family.

CTranslate2 takes token *strings* and maps them through the model's own vocabulary, so a
tokenizer here only has to split text into the same pieces the original Hugging Face
tokenizer would and add the same special tokens around them:

  marian, pegasus, t5, mt5   pieces + </s>
  bart                       <s> + pieces + </s>
  m2m100, nllb               pieces + </s>; the source-language token goes in front, added by
                             the translation engine because it depends on the request

The special tokens' spellings come from the converted model's `config.json` (written by
CTranslate2's converters), so a model with unusual specials still gets the right ones.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, Sequence

from models.exceptions import ManifestError
from models.manifest import Manifest

DEFAULT_BOS, DEFAULT_EOS, DEFAULT_UNK = "<s>", "</s>", "<unk>"
# Families whose source starts with the beginning-of-sentence token (as HF's BART does).
BOS_FAMILIES = frozenset({"bart"})


class Tokenizer(ABC):
    """Shared behaviour: fixed special tokens around the pieces, and clean-up on decode."""

    def __init__(
        self,
        *,
        prefix: Sequence[str] = (),
        suffix: Sequence[str] = (),
        strip_tokens: Iterable[str] = (),
    ):
        self.prefix = list(prefix)
        self.suffix = list(suffix)
        # special tokens that never belong in output text (eos, pad, language tokens, …)
        self.strip_tokens = frozenset(strip_tokens) | set(self.prefix) | set(self.suffix)

    @property
    def num_special_tokens(self) -> int:
        """Tokens `encode` adds around every text: what an input limit must leave room for."""
        return len(self.prefix) + len(self.suffix)

    @abstractmethod
    def pieces(self, text: str) -> list[str]:
        """The text's tokens, no special tokens."""

    @abstractmethod
    def detokenize(self, tokens: list[str]) -> str:
        """Text from output tokens that contain no special tokens."""

    def encode(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.prefix + self.pieces(text) + self.suffix for text in texts]

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text alone, special tokens excluded (see `num_special_tokens`)."""
        return [len(self.pieces(text)) for text in texts]

    def decode(self, token_lists: Sequence[Sequence[str]]) -> list[str]:
        return [
            self.detokenize([t for t in tokens if t not in self.strip_tokens]).strip()
            for tokens in token_lists
        ]


class SentencePieceTokenizer(Tokenizer):
    """Marian / OPUS-MT / Argos style: separate source and target SentencePiece models."""

    def __init__(self, source_model: Path, target_model: Path | None = None, **specials):
        import sentencepiece

        super().__init__(**specials)
        self._source = sentencepiece.SentencePieceProcessor(model_file=str(source_model))
        self._target = (
            self._source
            if target_model is None or Path(target_model) == Path(source_model)
            else sentencepiece.SentencePieceProcessor(model_file=str(target_model))
        )

    def pieces(self, text: str) -> list[str]:
        return self._source.encode(text, out_type=str)

    def detokenize(self, tokens: list[str]) -> str:
        # Pieces the target model does not know (source words copied by replace_unknowns)
        # are written as they are; runs of known pieces go through SentencePiece.
        target = self._target
        unk_id = target.unk_id()
        parts: list[str] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                text = target.decode_pieces(run)
                parts.append((" " + text) if run[0].startswith("▁") else text)
                run.clear()

        for token in tokens:
            if target.piece_to_id(token) == unk_id and token != target.id_to_piece(unk_id):
                flush()
                parts.append(token.replace("▁", " "))
            else:
                run.append(token)
        flush()
        return "".join(parts)


class JsonTokenizer(Tokenizer):
    """A Hugging Face `tokenizer.json` (byte-level BPE, Unigram, WordPiece, WordLevel)."""

    def __init__(self, tokenizer_file: Path, *, keep_unknown_surface: bool = False, **specials):
        from tokenizers import Tokenizer as HFTokenizer

        self._tokenizer = HFTokenizer.from_file(str(tokenizer_file))
        added_specials = {
            token.content
            for token in self._tokenizer.get_added_tokens_decoder().values()
            if token.special
        }
        specials["strip_tokens"] = set(specials.get("strip_tokens", ())) | added_specials
        super().__init__(**specials)
        self.unknown_token = self._unknown_token()
        self._unknown_id = (
            self._tokenizer.token_to_id(self.unknown_token) if self.unknown_token is not None else None
        )
        # With replace_unknowns, an out-of-vocabulary word must reach CTranslate2 as its own
        # text (which CTranslate2 maps to <unk>) so that the attended source token it copies
        # into the output is the word itself, not the string "<unk>".
        self.keep_unknown_surface = keep_unknown_surface

    def _unknown_token(self) -> str | None:
        model = json.loads(self._tokenizer.to_str()).get("model", {})
        unk = model.get("unk_token")
        if unk is None and model.get("unk_id") is not None and model.get("vocab"):
            unk = model["vocab"][model["unk_id"]][0]  # Unigram stores [piece, score] pairs
        return unk

    def pieces(self, text: str) -> list[str]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        tokens = list(encoding.tokens)
        if self._unknown_id is None:
            return tokens
        # Unknown pieces are found by id: some models (Unigram) report their surface string.
        for i, (token_id, (start, end)) in enumerate(zip(encoding.ids, encoding.offsets)):
            if token_id == self._unknown_id:
                surface = text[start:end]
                tokens[i] = surface if self.keep_unknown_surface and surface else self.unknown_token
        return tokens

    def detokenize(self, tokens: list[str]) -> str:
        decoder = self._tokenizer.decoder
        if decoder is None:  # word-level vocabularies: words separated by spaces
            return " ".join(tokens)
        return decoder.decode(tokens)


def read_model_config(model_dir: Path) -> dict:
    """The special tokens CTranslate2's converter recorded (`config.json`), or {}."""
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def load_tokenizer(model_dir: Path, manifest: Manifest) -> Tokenizer:
    """The tokenizer a model's manifest names, with its family's special tokens."""
    model_dir = Path(model_dir)
    config = read_model_config(model_dir)
    eos = config.get("eos_token") or DEFAULT_EOS
    bos = config.get("bos_token") or DEFAULT_BOS
    unk = config.get("unk_token") or DEFAULT_UNK
    prefix = [bos] if manifest.family in BOS_FAMILIES else []
    strip = {eos, bos, "<pad>", unk, *manifest.language_tokens.values()}
    if config.get("decoder_start_token"):
        strip.add(config["decoder_start_token"])
    specials = {"prefix": prefix, "suffix": [eos], "strip_tokens": strip}

    spec = manifest.tokenizer

    def file(relative: str | None, what: str) -> Path:
        if not relative:
            raise ManifestError(f"{manifest.name}: tokenizer.{what} is not set in the manifest")
        path = (model_dir / relative).resolve()
        if not path.is_relative_to(model_dir.resolve()):
            raise ManifestError(f"{manifest.name}: tokenizer.{what} must be a file inside the model")
        if not path.is_file():
            raise ManifestError(f"{manifest.name}: tokenizer file {relative!r} is missing")
        return path

    if spec.type == "sentencepiece":
        source = file(spec.source, "source")
        target = file(spec.target, "target") if spec.target else source
        return SentencePieceTokenizer(source, target, **specials)
    return JsonTokenizer(
        file(spec.file, "file"), keep_unknown_surface=manifest.replace_unknowns, **specials
    )
