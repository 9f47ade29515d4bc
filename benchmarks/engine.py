"""`engine_speedup_vs_transformers`: babelwire's translation path vs Hugging Face `generate`.

Both sides get the same Marian-base-sized checkpoint (6+6 layers, d_model 512, 8 heads,
FFN 2048, 32k vocabulary, random weights, built here with transformers), the same news-like
sentences, and produce exactly the same number of tokens per sentence:

- transformers: PyTorch float32, greedy (`num_beams=1`), `min_new_tokens = max_new_tokens`,
  batches of 32 sentences sorted by length (what a careful user writes), MarianTokenizer,
  on the device babelwire uses (the GPU when there is one);
- babelwire: the checkpoint converted with CTranslate2's converter (int8), installed in a
  model store with its manifest, driven through `ModelEngines.translate` — the tokenizer,
  routing, one `translate_batch` call — with the worker's settings;
- raw CTranslate2 (`engine_vs_best_ctranslate2`, target >= 0.95): the same converted model
  called directly under each threads layout / feed / compute type worth trying on this
  machine's cores (`raw_settings`); babelwire at its defaults over the fastest of them.

Output length is fixed by the weights, not by an option only one side has: the checkpoint's
`final_logits_bias` forbids `</s>`, so no side can stop early, and all decode exactly N
tokens (checked). Timings include tokenization and detokenization on every side. The sides
run in interleaved rounds; the best round of each counts, in wall-clock and in CPU seconds
(the machine is shared); transformers' batches are timed one by one, each batch's best
round counting. Quick and full scale run the same input (the per-token rate depends on the
batch), only the rounds differ. The CPU model and its ISA flags are printed beside.

    python -m benchmarks.engine --sweep    # more raw settings, then babelwire beam × threads
"""

from __future__ import annotations

import argparse
import json
import os
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

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of `texts` in batches of HF_BATCH_SIZE, sorted by length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        return [order[start : start + HF_BATCH_SIZE] for start in range(0, len(order), HF_BATCH_SIZE)]

    def translate_batch(self, texts: Sequence[str], new_tokens: int) -> tuple[list[str], list[int]]:
        inputs = self.tokenizer(list(texts), return_tensors="pt", padding=True).to(self.device)
        with self.torch.inference_mode():
            generated = self.model.generate(
                **inputs, num_beams=1, do_sample=False,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            )
        lengths = [generated.shape[1] - 1] * len(texts)  # minus the decoder start token
        return self.tokenizer.batch_decode(generated, skip_special_tokens=True), lengths

    def translate(self, texts: Sequence[str], new_tokens: int) -> tuple[list[str], list[int]]:
        outputs: dict[int, str] = {}
        lengths: list[int] = []
        for batch in self.batches(texts):
            decoded, batch_lengths = self.translate_batch([texts[i] for i in batch], new_tokens)
            lengths.extend(batch_lengths)
            outputs.update(zip(batch, decoded))
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


@dataclass(frozen=True)
class RawSetting:
    """One way to drive CTranslate2 directly: threads layout, compute type, and how the
    batch is handed over (`tokens`: one call cut by 4096 tokens; `split`: one call cut into
    one piece per replica; `async`: one asynchronous call per replica)."""

    inter_threads: int
    intra_threads: int
    feed: str
    compute_type: str = "int8"

    @property
    def label(self) -> str:
        return f"{self.inter_threads}x{self.intra_threads} {self.compute_type} {self.feed}"


def raw_settings(cores: int, wide: bool = False) -> list[RawSetting]:
    """The settings the run compares babelwire with (more with `wide`, for --sweep)."""
    settings = [
        RawSetting(1, cores, "tokens"),  # one replica using every core (babelwire's old choice)
        RawSetting(cores, 1, "tokens"),  # one replica per core, one call: one replica works
        RawSetting(cores, 1, "split"),
        RawSetting(cores, 1, "async"),
        RawSetting(cores, 1, "split", "int8_float32"),
    ]
    if cores >= 4:
        settings.append(RawSetting(cores // 2, 2, "split"))
    if wide:
        settings += [RawSetting(1, cores, "tokens", "int8_float32"), RawSetting(1, cores, "examples32"),
                     RawSetting(cores, 1, "examples16"), RawSetting(cores, 1, "split2x")]
    return settings


class RawSide:
    """CTranslate2 as a user would call it: SentencePiece pieces in, `translate_batch`,
    SentencePiece out (no babelwire code)."""

    def __init__(self, model_dir: Path, setting: RawSetting, new_tokens: int, device: str):
        import ctranslate2
        import sentencepiece as spm

        self.setting = setting
        self.new_tokens = new_tokens
        self.translator = ctranslate2.Translator(
            str(model_dir), device=device, compute_type=setting.compute_type,
            inter_threads=setting.inter_threads, intra_threads=setting.intra_threads,
        )
        self.source = spm.SentencePieceProcessor(model_file=str(model_dir / "source.spm"))
        self.target = spm.SentencePieceProcessor(model_file=str(model_dir / "target.spm"))

    def translate(self, texts: Sequence[str]) -> list[str]:
        import math

        setting = self.setting
        source = [pieces + ["</s>"] for pieces in self.source.encode(list(texts), out_type=str)]
        common = {"beam_size": 1, "max_decoding_length": self.new_tokens}
        replicas = setting.inter_threads
        if setting.feed == "async":
            order = sorted(range(len(source)), key=lambda i: len(source[i]))
            size = math.ceil(len(order) / replicas)
            pending = [(chunk, self.translator.translate_batch([source[i] for i in chunk], asynchronous=True, **common))
                       for chunk in (order[j:j + size] for j in range(0, len(order), size))]
            hypotheses: list = [None] * len(source)
            for chunk, futures in pending:
                for i, future in zip(chunk, futures):
                    hypotheses[i] = future.result().hypotheses[0]
        else:
            if setting.feed == "tokens":
                batching = {"batch_type": "tokens", "max_batch_size": 4096}
            elif setting.feed.startswith("split"):  # "split2x": two pieces per replica
                pieces = replicas * (int(setting.feed[5:-1]) if setting.feed != "split" else 1)
                batching = {"batch_type": "examples", "max_batch_size": math.ceil(len(source) / pieces)}
            else:  # "examplesN"
                batching = {"batch_type": "examples", "max_batch_size": int(setting.feed[8:])}
            results = self.translator.translate_batch(source, **common, **batching)
            hypotheses = [r.hypotheses[0] for r in results]
        return [self.target.decode([t for t in h if t != "</s>"]) for h in hypotheses]

    def output_lengths(self, texts: Sequence[str]) -> list[int]:
        source = [pieces + ["</s>"] for pieces in self.source.encode(list(texts), out_type=str)]
        return [len(r.hypotheses[0]) for r in self.translator.translate_batch(
            source, beam_size=1, max_decoding_length=self.new_tokens)]


@dataclass
class Best:
    """The best round of one side, in wall-clock and in CPU seconds (all threads)."""

    wall: float = float("inf")
    cpu: float = float("inf")

    def measure(self, run: Callable[[], object]) -> None:
        import time

        wall_started, cpu_started = time.perf_counter(), time.process_time()
        run()
        self.wall = min(self.wall, time.perf_counter() - wall_started)
        self.cpu = min(self.cpu, time.process_time() - cpu_started)


def default_threads() -> int:
    from models.loader import usable_cores

    return usable_cores()


def run(scale: Scale, workdir: Path) -> None:
    from models.loader import LoadOptions
    from worker.config import Settings

    settings = Settings()
    shape = MARIAN_BASE if scale.engine_full_size else TOY_SHAPE
    cores = settings.threads or default_threads()
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
    device = sides[1].engines.cache.device
    layout = LoadOptions.for_threads(settings.threads, device=device)
    # transformers runs where babelwire runs: on the GPU when there is one (still float32)
    hf = TransformersSide(checkpoint, cores, device)
    raws = {s.label: RawSide(workdir / "store" / MODEL_NAME, s, n, device)
            for s in (raw_settings(cores) if device == "cpu" else [RawSetting(1, 1, "tokens", "int8_float16")])}
    for side in sides.values():
        side.set_output_tokens(n)

    # same work on every side: every sentence gets exactly n output tokens
    _, hf_lengths = hf.translate(texts[:4], n)
    lengths = {"transformers": hf_lengths}
    for beam, side in sides.items():
        side.translate(texts)  # warm-up, on the measured input (CTranslate2's allocator caches)
        lengths[f"babelwire beam {beam}"] = side.output_lengths(texts[:4], n)
    for label, raw in raws.items():
        raw.translate(texts)
        lengths[label] = raw.output_lengths(texts[:4])
    if any(set(found) != {n} for found in lengths.values()):
        raise RuntimeError(f"output lengths differ from {n}: {lengths}")

    # Interleaved rounds, so every side sees the same machine load; the best round counts.
    # transformers runs the input as batches of 32 on its own: each batch's best round
    # counts (2 torch threads lose most to the machine's other load, and one busy second in
    # a 20-second round would otherwise decide the figure).
    hf_batches = [[texts[i] for i in batch] for batch in hf.batches(texts)]
    hf_bests = [Best() for _ in hf_batches]
    bw_best, raw_best = {beam: Best() for beam in sides}, {label: Best() for label in raws}
    for _ in range(scale.engine_rounds):
        for batch, best in zip(hf_batches, hf_bests):
            best.measure(lambda: hf.translate_batch(batch, n))
        for beam, side in sides.items():
            bw_best[beam].measure(lambda: side.translate(texts))
        for label, raw in raws.items():
            raw_best[label].measure(lambda: raw.translate(texts))

    hf_best = Best(wall=sum(b.wall for b in hf_bests), cpu=sum(b.cpu for b in hf_bests))
    tokens = len(texts) * n
    note(f"engine: {cpu_description()}")
    load = os.getloadavg()[0]
    if load > 1.5 * cores:  # this run itself keeps about `cores` threads busy
        # threads that wait for each other (torch's, CTranslate2's intra-op ones) lose the most
        note(f"engine: WARNING the machine is busy (load average {load:.1f} on {cores} cores): multi-threaded "
             "sides are slowed the most, so the wall-clock figures lean towards one-thread replicas")
    note(f"engine: {len(texts)} sentences × {n} tokens, best of {scale.engine_rounds} interleaved rounds "
         f"(tokens/s | tokens per CPU-second)")
    note(f"engine:   transformers float32 greedy on {hf.device}, {cores} torch threads: "
         f"{tokens / hf_best.wall:.0f} | {tokens / hf_best.cpu:.0f}")
    for label, best in raw_best.items():
        note(f"engine:   raw CTranslate2 {label}, greedy: {tokens / best.wall:.0f} | {tokens / best.cpu:.0f}")
    for beam in sides:
        note(f"engine:   babelwire {sides[beam].device}, beam {beam}, threads {settings.threads or 'auto'} "
             f"(inter_threads {layout.inter_threads}, intra_threads {layout.intra_threads}), "
             f"max_batch_tokens {settings.translation_max_batch_tokens}: "
             f"{tokens / bw_best[beam].wall:.0f} | {tokens / bw_best[beam].cpu:.0f}")
    best_raw = min(raw_best, key=lambda label: raw_best[label].wall)
    best_raw_cpu = min(raw_best, key=lambda label: raw_best[label].cpu)
    note(f"engine: best raw CTranslate2 setting: {best_raw} (per CPU-second: {best_raw_cpu})")
    report("engine_speedup_vs_transformers", hf_best.wall / bw_best[1].wall, "x")
    report("engine_speedup_vs_transformers_per_cpu_second", hf_best.cpu / bw_best[1].cpu, "x")
    # the limit: babelwire at its defaults over raw CTranslate2 at its best setting (target >= 0.95)
    report("engine_vs_best_ctranslate2", raw_best[best_raw].wall / bw_best[1].wall, "ratio")
    report("engine_vs_best_ctranslate2_per_cpu_second", raw_best[best_raw_cpu].cpu / bw_best[1].cpu, "ratio")
    if settings.translation_beam_size != 1:
        report(f"engine_speedup_vs_transformers_greedy_at_beam{settings.translation_beam_size}",
               hf_best.wall / bw_best[settings.translation_beam_size].wall, "x")


def cpu_description() -> str:
    """The CPU's model name and the instruction sets CTranslate2's int8 kernels care about."""
    import re

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return f"CPU {platform.processor() or platform.machine()} (no /proc/cpuinfo)"
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    wanted = sorted(f for f in (flags.group(1).split() if flags else [])
                    if f == "avx2" or f.startswith(("avx512", "amx")) or "vnni" in f)
    return f"CPU {model.group(1).strip() if model else 'unknown'}, {default_threads()} cores; ISA {' '.join(wanted) or 'no AVX2'}"


def sweep(scale: Scale, workdir: Path) -> None:
    """CTranslate2 settings by measurement (BENCHMARKS.md): raw CTranslate2 greedy under each
    threads layout / feed / compute type, interleaved rounds, then babelwire beam × threads.
    Run once more under `CT2_USE_EXPERIMENTAL_PACKED_GEMM=1` to compare packed GEMM."""
    workdir = workdir / "engine"
    checkpoint_dir = workdir / "hf-checkpoint"
    if not (workdir / "store" / MODEL_NAME).exists():
        build_checkpoint(checkpoint_dir, MARIAN_BASE if scale.engine_full_size else TOY_SHAPE)
        install_converted(checkpoint_dir, workdir / "store")
    texts = sentences(scale.engine_sentences)
    n = scale.engine_output_tokens
    tokens = len(texts) * n
    cores = default_threads()
    note(f"sweep: {cpu_description()}")
    raws = {s.label: RawSide(workdir / "store" / MODEL_NAME, s, n, "cpu") for s in raw_settings(cores, wide=True)}
    bests = {label: Best() for label in raws}
    for raw in raws.values():
        raw.translate(texts)
    for _ in range(max(3, scale.engine_rounds)):
        for label, raw in raws.items():
            bests[label].measure(lambda: raw.translate(texts))
    for label, best in bests.items():
        print(f"SWEEP raw {label} beam=1 {tokens / best.wall:.0f} tokens/s {tokens / best.cpu:.0f} tokens/cpu-s", flush=True)
    for threads in (1, 0):
        for beam in (1, 2, 4):
            side = BabelwireSide(workdir / "store", threads, beam, 4096)
            side.set_output_tokens(n)
            side.translate(texts)
            best = Best()
            for _ in range(max(2, scale.engine_rounds)):
                best.measure(lambda: side.translate(texts))
            print(f"SWEEP babelwire threads={threads or 'auto'} beam={beam} max_batch_tokens=4096 "
                  f"{tokens / best.wall:.0f} tokens/s {tokens / best.cpu:.0f} tokens/cpu-s", flush=True)


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
