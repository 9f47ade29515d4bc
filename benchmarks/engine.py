"""`engine_speedup_vs_transformers`: babelwire's translation path vs Hugging Face `generate`.

Both sides get the same Marian-base-sized checkpoint (6+6 layers, d_model 512, 8 heads,
FFN 2048, 32k vocabulary, random weights, built here with transformers), the same news-like
sentences, and produce exactly the same number of tokens per sentence:

- transformers: PyTorch float32, greedy (`num_beams=1`), `min_new_tokens = max_new_tokens`,
  batches of 32 sentences sorted by length (what a careful user writes), MarianTokenizer,
  on the device babelwire uses (the GPU when there is one);
- babelwire: the checkpoint converted with CTranslate2's converter (int8), installed in a
  model store with its manifest, driven through `ModelEngines.translate` — the tokenizer,
  routing, one `translate_batch` call with token-based batches — with the worker's settings.

Output length is fixed by the weights, not by an option only one side has: the checkpoint's
`final_logits_bias` forbids `</s>`, so neither side can stop early, and both decode exactly
N tokens (checked). Timings include tokenization and detokenization on both sides. The two
sides run in alternating rounds; the best round of each counts (the machine is shared).

    python -m benchmarks.engine --sweep    # beam × threads × batch tokens, for BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from benchmarks.common import SCALES, Scale, news_sentence, note, report, timed

MODEL_NAME = "bench-marian-en-de"
HF_BATCH_SIZE = 32


@dataclass(frozen=True)
class MarianShape:
    d_model: int
    layers: int
    heads: int
    ffn: int
    vocab: int

    @property
    def label(self) -> str:
        return f"{self.layers}+{self.layers} layers, d={self.d_model}, vocab {self.vocab}"


MARIAN_BASE = MarianShape(d_model=512, layers=6, heads=8, ffn=2048, vocab=32_000)
TOY_SHAPE = MarianShape(d_model=64, layers=1, heads=2, ffn=128, vocab=2_000)


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:  # distinct, so no side gets to skip a duplicate
        seen.setdefault(news_sentence(rng))
    return list(seen)


def build_checkpoint(out_dir: Path, shape: MarianShape, seed: int = 0) -> Path:
    """A random-weight MarianMT checkpoint + MarianTokenizer files that never emit `</s>`."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "_corpus.txt"
    corpus.write_text("\n".join(sentences(3000, seed=99)) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "_spm"), vocab_size=min(2000, shape.vocab // 2),
        model_type="unigram", hard_vocab_limit=False, unk_id=1, eos_id=0, bos_id=-1, pad_id=-1,
        minloglevel=2, num_threads=2,
    )
    corpus.unlink()
    processor = spm.SentencePieceProcessor(model_file=str(out_dir / "_spm.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    tokens = ["</s>", "<unk>"] + [p for p in pieces if p not in ("</s>", "<unk>")]
    # A real OPUS-MT vocabulary is ~32k pieces; the output layer's size is what costs, so fill.
    tokens += [f"▁w{i}" for i in range(shape.vocab - 1 - len(tokens))]
    tokens.append("<pad>")
    vocab = {token: i for i, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (out_dir / name).write_bytes((out_dir / "_spm.model").read_bytes())
    for leftover in out_dir.glob("_spm.*"):
        leftover.unlink()

    tokenizer = MarianTokenizer(
        source_spm=str(out_dir / "source.spm"), target_spm=str(out_dir / "target.spm"),
        vocab=str(out_dir / "vocab.json"),
    )
    pad_id, eos_id = vocab["<pad>"], vocab["</s>"]
    config = MarianConfig(
        vocab_size=len(vocab), d_model=shape.d_model,
        encoder_layers=shape.layers, decoder_layers=shape.layers,
        encoder_attention_heads=shape.heads, decoder_attention_heads=shape.heads,
        encoder_ffn_dim=shape.ffn, decoder_ffn_dim=shape.ffn,
        max_position_embeddings=512, pad_token_id=pad_id, decoder_start_token_id=pad_id,
        eos_token_id=eos_id, forced_eos_token_id=None, scale_embedding=True,
        share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    with torch.no_grad():
        model.model.shared.weight[pad_id].zero_()  # Marian decoding starts from a zero <pad>
        model.final_logits_bias.zero_()
        model.final_logits_bias[0, eos_id] = -1e4  # never stop early: fixed output length
    model.generation_config.forced_eos_token_id = None
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def install_converted(checkpoint: Path, store_dir: Path, name: str = MODEL_NAME) -> Path:
    """Convert to CTranslate2 with int8 weights into a model store, manifest included, so
    `ModelEngines` serves it like any pulled model: through `babelwire models convert`'s
    code when it is there, else with CTranslate2's converter and a manifest written here."""
    try:
        from models.convert import convert_checkpoint
    except ImportError:
        convert_checkpoint = None
    if convert_checkpoint is not None:
        convert_checkpoint(checkpoint, store_dir, name, task="translation", sources=["en"], targets=["de"],
                           quantization="int8", license="none (random weights)", force=True)
        return store_dir / name

    from ctranslate2.converters import TransformersConverter

    from models.manifest import Manifest, TokenizerSpec

    model_dir = store_dir / name
    TransformersConverter(str(checkpoint)).convert(str(model_dir), quantization="int8", force=True)
    for spm_file in ("source.spm", "target.spm"):
        (model_dir / spm_file).write_bytes((checkpoint / spm_file).read_bytes())
    Manifest(
        name=name, task="translation", family="marian",
        tokenizer=TokenizerSpec(type="sentencepiece", source="source.spm", target="target.spm"),
        pairs=[["en", "de"]], input_limit=512, source={"file": str(checkpoint)},
        license="none (random weights)", quantization="int8",
    ).save(model_dir)
    return model_dir


class TransformersSide:
    """What a user running transformers themselves would write."""

    def __init__(self, checkpoint: Path, threads: int, device: str = "cpu"):
        import torch
        from transformers import MarianMTModel, MarianTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.tokenizer = MarianTokenizer.from_pretrained(str(checkpoint))
        self.model = MarianMTModel.from_pretrained(str(checkpoint), dtype=torch.float32).eval().to(device)

    def translate(self, texts: Sequence[str], new_tokens: int) -> tuple[list[str], list[int]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        outputs: dict[int, str] = {}
        lengths: list[int] = []
        for start in range(0, len(order), HF_BATCH_SIZE):
            batch = order[start : start + HF_BATCH_SIZE]
            inputs = self.tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True).to(self.device)
            with self.torch.inference_mode():
                generated = self.model.generate(
                    **inputs, num_beams=1, do_sample=False,
                    max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                )
            lengths.extend([generated.shape[1] - 1] * len(batch))  # minus the decoder start token
            for i, text in zip(batch, self.tokenizer.batch_decode(generated, skip_special_tokens=True)):
                outputs[i] = text
        return [outputs[i] for i in range(len(texts))], lengths


class BabelwireSide:
    """`ModelEngines` over the store, as the worker builds it."""

    def __init__(self, store_dir: Path, threads: int, beam_size: int, max_batch_tokens: int):
        from models.engines import ModelEngines
        from models.translation import TranslateOptions

        self.engines = ModelEngines.open(
            store_dir, device="auto", compute_type="auto", threads=threads,
            translate_options=TranslateOptions(beam_size=beam_size, max_batch_tokens=max_batch_tokens,
                                               max_decoding_length=512),
        )
        self.route = self.engines.translation("en", "de")
        self.engines.warm_up()
        self.beam_size = beam_size
        self.max_batch_tokens = max_batch_tokens

    def set_output_tokens(self, new_tokens: int) -> None:
        from dataclasses import replace

        self.engines.translate_options = replace(self.engines.translate_options, max_decoding_length=new_tokens)

    def translate(self, texts: Sequence[str]) -> list[str]:
        return self.engines.translate([(self.route, list(texts))])[0]

    def output_lengths(self, texts: Sequence[str], new_tokens: int) -> list[int]:
        """Token counts of the hypotheses (the engines return text): one direct call."""
        model = self.engines.cache.get(MODEL_NAME)
        encoded = model.tokenizer.encode(list(texts))
        return [len(h) for h in model.translate_batch(encoded, beam_size=self.beam_size,
                                                      max_decoding_length=new_tokens)]

    @property
    def device(self) -> str:
        return f"{self.engines.cache.device}/{self.engines.cache.compute_type}"


def best_of(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        with timed() as elapsed:
            run()
        best = min(best, elapsed())
    return best


def default_threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run(scale: Scale, workdir: Path) -> None:
    from worker.config import Settings

    settings = Settings()
    shape = MARIAN_BASE if scale.engine_full_size else TOY_SHAPE
    threads = settings.threads or default_threads()
    texts = sentences(scale.engine_sentences)
    n = scale.engine_output_tokens

    workdir = workdir / "engine"
    with timed() as build_time:
        checkpoint = build_checkpoint(workdir / "hf-checkpoint", shape)
        install_converted(checkpoint, workdir / "store")
    note(f"engine: built and converted a {shape.label} checkpoint in {build_time():.0f} s")

    sides = {
        beam: BabelwireSide(workdir / "store", settings.threads, beam, settings.translation_max_batch_tokens)
        for beam in sorted({1, settings.translation_beam_size})
    }
    # transformers runs where babelwire runs: on the GPU when there is one (still float32)
    hf = TransformersSide(checkpoint, threads, sides[1].engines.cache.device)
    for side in sides.values():
        side.set_output_tokens(n)

    # same work on both sides: every sentence gets exactly n output tokens
    _, hf_lengths = hf.translate(texts[:4], n)
    for beam, side in sides.items():
        side.translate(texts[:4])  # warm-up
        lengths = side.output_lengths(texts[:4], n)
        if set(lengths) != {n} or set(hf_lengths) != {n}:
            raise RuntimeError(f"output lengths differ from {n}: babelwire beam {beam} {lengths}, transformers {hf_lengths}")

    hf_best = float("inf")
    bw_best = {beam: float("inf") for beam in sides}
    for _ in range(scale.engine_rounds):  # interleaved, so both see the same machine load
        hf_best = min(hf_best, best_of(1, lambda: hf.translate(texts, n)))
        for beam, side in sides.items():
            bw_best[beam] = min(bw_best[beam], best_of(1, lambda: side.translate(texts)))

    tokens = len(texts) * n
    hf_rate = tokens / hf_best
    note(f"engine: {len(texts)} sentences × {n} tokens; transformers float32 greedy on {hf.device}, "
         f"{threads} torch threads: {hf_rate:.0f} tokens/s")
    for beam in sides:
        note(f"engine: babelwire {sides[beam].device}, beam {beam}, threads {settings.threads or 'auto'}, "
             f"max_batch_tokens {settings.translation_max_batch_tokens}: {tokens / bw_best[beam]:.0f} tokens/s")
    report("engine_speedup_vs_transformers", (tokens / bw_best[1]) / hf_rate, "x")
    if settings.translation_beam_size != 1:
        report(f"engine_speedup_vs_transformers_greedy_at_beam{settings.translation_beam_size}",
               (tokens / bw_best[settings.translation_beam_size]) / hf_rate, "x")


def sweep(scale: Scale, workdir: Path) -> None:
    """CTranslate2 settings by measurement: tokens/s for beam × intra threads × batch tokens."""
    workdir = workdir / "engine"
    checkpoint_dir = workdir / "hf-checkpoint"
    if not (workdir / "store" / MODEL_NAME).exists():
        build_checkpoint(checkpoint_dir, MARIAN_BASE if scale.engine_full_size else TOY_SHAPE)
        install_converted(checkpoint_dir, workdir / "store")
    texts = sentences(scale.engine_sentences)
    n = scale.engine_output_tokens
    tokens = len(texts) * n
    for threads in (1, 2, 0):
        for beam in (1, 2, 4):
            for batch_tokens in (1024, 4096):
                side = BabelwireSide(workdir / "store", threads, beam, batch_tokens)
                side.set_output_tokens(n)
                side.translate(texts[:4])
                seconds = best_of(max(2, scale.engine_rounds), lambda: side.translate(texts))
                print(f"SWEEP threads={threads or 'auto'} beam={beam} max_batch_tokens={batch_tokens} "
                      f"{tokens / seconds:.0f} tokens/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--sweep", action="store_true", help="measure CTranslate2 settings instead")
    parser.add_argument("--workdir", type=Path, help="keep the checkpoint here (reused by --sweep)")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    with tempfile.TemporaryDirectory(prefix="bw-bench-engine-") as tmp:
        workdir = args.workdir or Path(tmp)
        (sweep if args.sweep else run)(scale, workdir)


if __name__ == "__main__":
    main()
