"""Tiny random-weight Hugging Face checkpoints of every architecture babelwire supports.

One builder per real architecture: Marian (OPUS-MT tokenizer: source/target SentencePiece +
vocab.json, optionally multi-target `>>xx<<` tokens), M2M100 and NLLB (language-token
tokenizers), BART (byte-level BPE), PEGASUS and T5 (SentencePiece). Each writes what the
hub would serve for such a model (config.json, safetensors weights, tokenizer files), which
is what `babelwire models convert` reads. d_model 16, one layer each way: a build takes
well under a second of model time; SentencePiece/BPE training dominates.

Random weights give junk text. Two adjustments keep the junk usable in tests:
- special tokens (eos, pad, language tokens, masks) and tokens that decode to nothing are
  made impossible to generate, so every output is non-empty text; decoding then runs to
  the engine's length limit, which for these models is cheap;
- everything is seeded, so outputs are deterministic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

D_MODEL = 16

# A few lines per language to train throwaway tokenizers on.
TRAINING_LINES = (
    "The council approved the new budget on Tuesday evening.",
    "Heavy rain flooded several streets in the old town.",
    "The minister said the talks would continue next week.",
    "Prices rose faster than expected in the third quarter.",
    "A storm is expected to reach the coast tomorrow morning.",
    "Officials counted more than two thousand votes by noon.",
    "Der Rat hat den neuen Haushalt am Dienstagabend gebilligt.",
    "Starker Regen hat mehrere Straßen der Altstadt überflutet.",
    "Le conseil a approuvé le nouveau budget mardi soir.",
    "De fortes pluies ont inondé plusieurs rues de la vieille ville.",
    "El consejo aprobó el nuevo presupuesto el martes por la noche.",
    "Il consiglio ha approvato il nuovo bilancio martedì sera.",
)

# Text in the toy languages some tests route to (ISO 639-2 local use codes qaa, qab).
TOY_LINES = ("qaa lorem ipsum dolor sit amet.", "qab consectetur adipiscing elit sed do.")


def _train_sentencepiece(
    prefix: Path,
    *,
    vocab_size: int,
    model_type: str = "unigram",
    unk_id: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    lines: Iterable[str] = TRAINING_LINES + TOY_LINES,
) -> Path:
    import sentencepiece as spm

    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        unk_id=unk_id,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        minloglevel=2,
        num_threads=1,
    )
    corpus.unlink()
    prefix.with_suffix(".vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def _spm_pieces(model_file: Path) -> list[str]:
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def _generable(token: str, special: set[str]) -> bool:
    """Tokens a junk output may consist of: not special, and not blank when decoded."""
    if token in special or re.fullmatch(r"<.*>|>>.*<<|__.*__|madeupword\d+|[a-z]{3}_[A-Z][a-z]{3}", token):
        return False
    return bool(token.replace("▁", "").replace("Ġ", "").strip())


def _forbidden_ids(tokenizer, vocab_size: int) -> list[int]:
    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_tokens)
    allowed = {i for token, i in vocab.items() if i < vocab_size and _generable(token, special)}
    return [i for i in range(vocab_size) if i not in allowed]


def _forbid_with_logits_bias(model, forbidden: Sequence[int]) -> None:
    """BART, Marian, PEGASUS: `final_logits_bias` (CTranslate2 keeps it as the output bias)."""
    import torch

    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 1.0)  # also spreads the logits: clear-cut choices
        model.final_logits_bias[0, list(forbidden)] = -100.0


def _forbid_with_constant_feature(model, final_norm, forbidden: Sequence[int]) -> None:
    """M2M100/NLLB have no output bias: the decoder's last LayerNorm makes feature 0 a
    constant 10, and the output row of each forbidden token weighs it by -10."""
    import torch

    with torch.no_grad():
        final_norm.weight[0] = 0.0
        final_norm.bias[0] = 10.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[list(forbidden), 0] = -10.0


def _finish(model, tokenizer, out_dir: Path, extra_config: dict | None = None) -> Path:
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if extra_config:
        config_file = out_dir / "config.json"
        config = json.loads(config_file.read_text())
        config.update(extra_config)
        config_file.write_text(json.dumps(config, indent=2))
    return out_dir


def _seq2seq_sizes() -> dict:
    return dict(
        d_model=D_MODEL,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * D_MODEL,
        decoder_ffn_dim=2 * D_MODEL,
        max_position_embeddings=512,
    )


def build_marian(
    out_dir: Path,
    *,
    source_lang: str = "en",
    target_lang: str = "de",
    target_tokens: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """An OPUS-MT style MarianMT checkpoint: source.spm, target.spm, vocab.json and a
    tokenizer_config.json naming source_lang/target_lang. `target_tokens` (e.g. `[">>es<<",
    ">>it<<"]`) make it multi-target like opus-mt-en-ROMANCE."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_file = _train_sentencepiece(
        out_dir / "_spm", vocab_size=120, unk_id=1, bos_id=-1, eos_id=0, pad_id=-1
    )
    pieces = _spm_pieces(spm_file)
    # Marian's vocab.json: </s>, <unk>, the pieces, language tokens, <pad> last.
    tokens = ["</s>", "<unk>"] + [p for p in pieces if p not in ("</s>", "<unk>")]
    tokens += list(target_tokens) + ["<pad>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes(spm_file.read_bytes())
    spm_file.unlink()

    tokenizer = MarianTokenizer(
        source_spm=str(out_dir / "source.spm"),
        target_spm=str(out_dir / "target.spm"),
        vocab=str(out_dir / "vocab.json"),
        source_lang=source_lang,
        target_lang=target_lang,
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        **_seq2seq_sizes(),
        pad_token_id=vocab["<pad>"],
        decoder_start_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        forced_eos_token_id=vocab["</s>"],
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    _forbid_with_logits_bias(model, _forbidden_ids(tokenizer, len(vocab)))
    return _finish(model, tokenizer, out_dir)


def build_m2m100(out_dir: Path, *, seed: int = 0) -> Path:
    """An M2M100 checkpoint: sentencepiece.bpe.model + fairseq vocab.json; the tokenizer
    adds the 100 `__xx__` language tokens."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_file = _train_sentencepiece(
        out_dir / "_spm", vocab_size=150, model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1
    )
    pieces = _spm_pieces(spm_file)
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + [p for p in pieces if p not in ("<s>", "</s>", "<unk>")]
    vocab = {token: i for i, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "sentencepiece.bpe.model").write_bytes(spm_file.read_bytes())
    spm_file.unlink()

    tokenizer = M2M100Tokenizer(
        vocab_file=str(out_dir / "vocab.json"), spm_file=str(out_dir / "sentencepiece.bpe.model")
    )
    # Embedding rows: the pieces, the 100 `__xx__` tokens, then 8 "madeupword" slots, as in
    # facebook/m2m100_418M (128004 + 100 + 8).
    vocab_size = len(set(tokenizer.get_vocab()) | set(tokenizer.lang_token_to_id)) + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=vocab_size,
        **_seq2seq_sizes(),
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        scale_embedding=True,
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    _forbid_with_constant_feature(
        model, model.model.decoder.layer_norm, _forbidden_ids(tokenizer, vocab_size)
    )
    return _finish(model, tokenizer, out_dir)


def build_nllb(out_dir: Path, *, seed: int = 0) -> Path:
    """An NLLB-200 checkpoint (M2M100 architecture): tokenizer.json with the 202 FLORES-200
    language tokens, as `facebook/nllb-200-*` ships it."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "_tok"
    work.mkdir(exist_ok=True)
    spm_file = _train_sentencepiece(
        work / "_spm", vocab_size=150, model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1
    )
    (work / "sentencepiece.bpe.model").write_bytes(spm_file.read_bytes())
    spm_file.unlink()
    tokenizer = NllbTokenizer.from_pretrained(str(work))  # converts the SentencePiece model
    # Built from SentencePiece alone, transformers 5 leaves the language tokens out; the
    # hub's tokenizer.json has them as added special tokens.
    tokenizer.add_tokens(list(FAIRSEQ_LANGUAGE_CODES), special_tokens=True)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()

    vocab_size = len(tokenizer)
    config = M2M100Config(
        vocab_size=vocab_size,
        **_seq2seq_sizes(),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
        tokenizer_class="NllbTokenizer",
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    _forbid_with_constant_feature(
        model, model.model.decoder.layer_norm, _forbidden_ids(tokenizer, vocab_size)
    )
    return _finish(model, tokenizer, out_dir)


def build_bart(out_dir: Path, *, seed: int = 0) -> Path:
    """A BART checkpoint (DistilBART-CNN style) with a byte-level BPE tokenizer."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        list(TRAINING_LINES),
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    bpe.save_model(str(out_dir))  # vocab.json + merges.txt
    tokenizer = BartTokenizer(vocab=str(out_dir / "vocab.json"), merges=str(out_dir / "merges.txt"))
    vocab_size = len(tokenizer)
    config = BartConfig(
        vocab_size=vocab_size,
        **_seq2seq_sizes(),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    _forbid_with_logits_bias(model, _forbidden_ids(tokenizer, vocab_size))
    return _finish(model, tokenizer, out_dir)


def build_pegasus(out_dir: Path, *, seed: int = 0) -> Path:
    """A PEGASUS checkpoint (pegasus-cnn_dailymail style): spiece.model, offset specials."""
    import torch
    from transformers import PegasusConfig, PegasusForConditionalGeneration, PegasusTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_file = _train_sentencepiece(
        out_dir / "_spm", vocab_size=120, unk_id=2, bos_id=-1, eos_id=1, pad_id=0
    )
    spm_file.rename(out_dir / "spiece.model")
    tokenizer = PegasusTokenizer.from_pretrained(str(out_dir))
    vocab_size = len(tokenizer)
    config = PegasusConfig(
        vocab_size=vocab_size,
        **_seq2seq_sizes(),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    torch.manual_seed(seed)
    model = PegasusForConditionalGeneration(config)
    _forbid_with_logits_bias(model, _forbidden_ids(tokenizer, vocab_size))
    return _finish(model, tokenizer, out_dir)


def build_t5(out_dir: Path, *, seed: int = 0, multilingual: bool = False) -> Path:
    """A T5 checkpoint (`multilingual`: mT5, as mT5_multilingual_XLSum): spiece.model with
    the 100 `<extra_id_N>` sentinels. Untied output layer (T5 v1.1 / mT5 style)."""
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Config, T5ForConditionalGeneration
    from transformers import T5Tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_file = _train_sentencepiece(
        out_dir / "_spm", vocab_size=120, unk_id=2, bos_id=-1, eos_id=1, pad_id=0
    )
    spm_file.rename(out_dir / "spiece.model")
    tokenizer = T5Tokenizer.from_pretrained(str(out_dir))
    vocab_size = len(tokenizer)
    config_class, model_class = (MT5Config, MT5ForConditionalGeneration) if multilingual else (
        T5Config, T5ForConditionalGeneration
    )
    config = config_class(
        vocab_size=vocab_size,
        d_model=D_MODEL,
        d_kv=8,
        d_ff=2 * D_MODEL,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        feed_forward_proj="gated-gelu" if multilingual else "relu",
    )
    config.tie_word_embeddings = False  # transformers 5 ignores it as a constructor argument
    torch.manual_seed(seed)
    model = model_class(config)
    forbidden = _forbidden_ids(tokenizer, vocab_size)
    with torch.no_grad():
        # No output bias and RMS norms: a large constant input feature 0 keeps the decoder's
        # feature 0 positive, and forbidden tokens weigh it negatively.
        model.shared.weight[:, 0] = 10.0
        for stack in (model.encoder, model.decoder):
            stack.embed_tokens.weight.copy_(model.shared.weight)  # one embedding, as in T5
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[forbidden, 0] = -10.0
    return _finish(model, tokenizer, out_dir)


BUILDERS = {
    "marian": build_marian,
    "m2m100": build_m2m100,
    "nllb": build_nllb,
    "bart": build_bart,
    "pegasus": build_pegasus,
    "t5": build_t5,
}
