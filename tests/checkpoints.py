"""Tiny random-weight checkpoints of real architectures, built with transformers for tests.

They are not trained: their outputs are arbitrary but deterministic, which is enough to
check that babelwire drives each architecture exactly as Hugging Face does (same special
tokens, same outputs as `generate`) and that routing, batching and caching work. Each
builder writes a Hugging Face checkpoint directory (weights + tokenizer files), which is
what CTranslate2's `TransformersConverter` and `babelwire models convert` read.

This module holds the Marian builder; other architectures are added in the same style.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

# A few lines of mixed text to train a throwaway SentencePiece model on.
SPM_TRAINING_LINES = (
    "The council approved the new budget on Tuesday evening.",
    "Heavy rain flooded several streets in the old town.",
    "The minister said the talks would continue next week.",
    "Prices rose faster than expected in the third quarter.",
    "Der Rat hat den neuen Haushalt am Dienstagabend gebilligt.",
    "Le conseil a approuvé le nouveau budget mardi soir.",
    "El consejo aprobó el nuevo presupuesto el martes por la noche.",
    "Hội đồng đã thông qua ngân sách mới vào tối thứ Ba.",
    "A storm is expected to reach the coast tomorrow morning.",
    "Officials counted more than two thousand votes by noon.",
)


def train_sentencepiece(
    prefix: Path, lines: Sequence[str] = SPM_TRAINING_LINES, vocab_size: int = 120
) -> Path:
    """Train a tiny unigram SentencePiece model; returns the `.model` path."""
    import sentencepiece as spm

    prefix.parent.mkdir(parents=True, exist_ok=True)
    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        # Marian vocabularies: </s> = 0, <unk> = 1, no <s>; <pad> is appended by the tokenizer.
        unk_id=1,
        eos_id=0,
        bos_id=-1,
        pad_id=-1,
        minloglevel=2,
        num_threads=1,
    )
    corpus.unlink()
    return prefix.with_suffix(".model")


def build_marian(
    out_dir: Path,
    *,
    language_tokens: Sequence[str] = (),
    seed: int = 0,
    d_model: int = 32,
    layers: int = 1,
    max_positions: int = 128,
) -> Path:
    """A random-weight MarianMT checkpoint with its MarianTokenizer files in `out_dir`.

    `language_tokens` (e.g. `[">>qaa<<", ">>qab<<"]`) make it a multi-target OPUS-MT style
    model whose source starts with the wanted target's token.
    """
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_path = train_sentencepiece(out_dir / "_spm")
    processor = spm.SentencePieceProcessor(model_file=str(spm_path))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    # Marian's vocab.json: the SentencePiece pieces, language tokens, then <pad> last.
    vocab_tokens = ["</s>", "<unk>"] + [p for p in pieces if p not in ("</s>", "<unk>")]
    vocab_tokens += list(language_tokens) + ["<pad>"]
    vocab = {token: i for i, token in enumerate(vocab_tokens)}
    vocab_file = out_dir / "vocab.json"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes(spm_path.read_bytes())
    spm_path.unlink()
    spm_path.with_suffix(".vocab").unlink(missing_ok=True)

    tokenizer = MarianTokenizer(
        source_spm=str(out_dir / "source.spm"),
        target_spm=str(out_dir / "target.spm"),
        vocab=str(vocab_file),
    )
    pad_id = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=max_positions,
        pad_token_id=pad_id,
        decoder_start_token_id=pad_id,
        eos_token_id=vocab["</s>"],
        forced_eos_token_id=None,  # decode to the length limit, like CTranslate2 does
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    # The default init (std 0.02) gives near-flat logits and the same output for every input;
    # wide weights make outputs depend on the input, so a wrong special token shows.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1 and "embed_positions" not in name:
                param.normal_(0.0, 0.5)
        model.final_logits_bias.zero_()
        # Marian decoding starts from <pad>, whose embedding must be zero (CTranslate2 models
        # it as `start_from_zero_embedding` and drops the <pad> row).
        model.model.shared.weight[pad_id].zero_()
    model.generation_config.forced_eos_token_id = None
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def convert_checkpoint(checkpoint: Path, out_dir: Path, quantization: str | None = None) -> Path:
    """Convert a Hugging Face checkpoint directory with CTranslate2's converter."""
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(checkpoint)).convert(str(out_dir), quantization=quantization, force=True)
    return Path(out_dir)
