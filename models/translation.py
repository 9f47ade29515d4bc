"""Translation engine: routes are compositions of single-model translations; all sentences
bound for one model are translated in one `translate_batch` call.

A `ModelTranslation` is one model driven in one direction (with the target selection its
family needs). A `PivotTranslation` is two translations composed, as in Argos Translate —
not a special case: `translate_jobs` runs every route leg by leg, batching legs by model.

Protected spans (`pipeline.protect`) are carried through each model by one of two methods,
chosen per model (`protection_method`):

  placeholder  models with `replace_unknowns` and a word-level vocabulary: each span becomes
               an out-of-vocabulary word that CTranslate2 copies from the attended source
               position (the toy models; word-level Argos-style models)
  alignment    subword models (SentencePiece/BPE: OPUS-MT, M2M100, NLLB, BART, T5): the span
               stays in the source, so the model reads the real sentence, and the output
               tokens it is aligned to (`return_attention`) are replaced by the span; a
               placeholder would be cut into pieces the model may transliterate or drop

Either way, a span the model loses is put back where the attention points, else before the
sentence's final punctuation: never dropped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence, Union

from models.loader import LoadedModel, ModelCache
from models.exceptions import ManifestError
from models.manifest import Manifest
from models.memory import TranslationMemory, memory_key
from models.tokenizer import Tokenizer
from pipeline.protect import ProtectedSentence, Span, normalize_sentence

PLACEHOLDER, ALIGNMENT = "placeholder", "alignment"


@dataclass(frozen=True)
class TranslateOptions:
    beam_size: int = 4  # 1 = greedy
    max_batch_tokens: int = 4096  # CTranslate2 sub-batches by tokens inside the one call
    max_decoding_length: int = 256  # per sentence; further capped by the model's input limit
    length_penalty: float = 1.0
    # ... and by the call's longest input: a model that loops on a short sentence stops at
    # ratio × input + slack tokens instead of decoding to the absolute limit
    max_length_ratio: float = 2.0
    max_length_slack: int = 10

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.max_batch_tokens < 1 or self.max_decoding_length < 1:
            raise ValueError("beam_size, max_batch_tokens and max_decoding_length must be >= 1")
        if self.max_length_ratio <= 0 or self.max_length_slack < 0:
            raise ValueError("max_length_ratio must be > 0 and max_length_slack >= 0")


@dataclass(frozen=True, eq=False)
class ModelTranslation:
    """One model translating `source` → `target` (ISO codes)."""

    source: str
    target: str
    model: Manifest

    def __post_init__(self) -> None:
        manifest = self.model
        if (self.source, self.target) not in manifest.translation_pairs():
            raise ManifestError(f"{manifest.name} does not translate {self.source}→{self.target}")
        # Fail at routing time, not mid-batch, when a needed language token is missing.
        self.source_tokens()
        self.target_prefix()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def legs(self) -> tuple["ModelTranslation", ...]:
        return (self,)

    def _language_token(self, lang: str) -> str:
        try:
            return self.model.language_tokens[lang]
        except KeyError:
            raise ManifestError(
                f"{self.model.name}: manifest has no language token for {lang!r} (language_tokens)"
            ) from None

    def source_tokens(self) -> list[str]:
        """Tokens in front of the source: `>>xxx<<` (multi-target OPUS-MT), then the source
        language token (M2M100/NLLB: `__en__`, `eng_Latn`)."""
        tokens = []
        if self.model.target_selection == "source_token":
            tokens.append(self._language_token(self.target))
        if self.model.source_language_token:
            tokens.append(self._language_token(self.source))
        return tokens

    def target_prefix(self) -> list[str] | None:
        """Decoding starts with the target language token (NLLB/M2M100)."""
        if self.model.target_selection == "prefix_token":
            return [self._language_token(self.target)]
        return None


@dataclass(frozen=True, eq=False)
class PivotTranslation:
    """`first` then `second` (e.g. qaa→en with one model, en→qab with another)."""

    first: "Route"
    second: "Route"

    def __post_init__(self) -> None:
        if self.first.target != self.second.source:
            raise ValueError(
                f"cannot compose {self.first.source}→{self.first.target} with {self.second.source}→{self.second.target}"
            )

    @property
    def name(self) -> str:
        return f"{self.first.name}+{self.second.name}"

    @property
    def source(self) -> str:
        return self.first.source

    @property
    def target(self) -> str:
        return self.second.target

    @property
    def legs(self) -> tuple[ModelTranslation, ...]:
        return self.first.legs + self.second.legs


Route = Union[ModelTranslation, PivotTranslation]


def _fit(tokens: list[str], limit: int, n_prefix: int, n_suffix: int) -> list[str]:
    """Truncate an over-long input but keep its special tokens (a sentence past the model's
    input limit is cut, never sent so long that positions run out)."""
    if len(tokens) <= limit:
        return tokens
    keep = max(limit - n_prefix - n_suffix, 1)
    return tokens[: n_prefix + keep] + tokens[len(tokens) - n_suffix :]


def protection_method(model: LoadedModel) -> str:
    """`placeholder` where the model copies an unknown word (replace_unknowns) and the
    tokenizer keeps a placeholder as one word; `alignment` everywhere else."""
    if model.manifest.replace_unknowns and model.tokenizer.pieces(_placeholder(0)) == [_placeholder(0)]:
        return PLACEHOLDER
    return ALIGNMENT


def _placeholder(k: int) -> str:
    # letters and digits only: one word for word-level tokenizers, unknown to any vocabulary
    return f"Qzx{k}vq"


@dataclass(frozen=True)
class _Encoded:
    """One source as sent: its tokens, and per span where it sits (token range) and the
    placeholder standing for it (placeholder method)."""

    tokens: list[str]
    span_tokens: tuple[tuple[int, int] | None, ...]
    placeholders: tuple[str | None, ...]


def _encode(tokenizer: Tokenizer, protected: ProtectedSentence, method: str, lead: list[str]) -> _Encoded:
    if not protected.spans:
        tokens = lead + tokenizer.encode([protected.text])[0]
        return _Encoded(tokens, (), ())
    if method == PLACEHOLDER and not any(_placeholder(k) in protected.text for k in range(len(protected.spans))):
        masked, k = [], 0
        for part in protected.segments():
            if isinstance(part, Span):
                masked.append(_placeholder(k))
                k += 1
            else:
                masked.append(part)
        tokens = lead + tokenizer.encode(["".join(masked)])[0]
        positions = []
        for k in range(len(protected.spans)):
            at = tokens.index(_placeholder(k)) if _placeholder(k) in tokens else None
            positions.append((at, at + 1) if at is not None else None)
        return _Encoded(tokens, tuple(positions), tuple(_placeholder(k) for k in range(len(protected.spans))))
    # alignment: each stretch tokenized on its own, so a span's tokens are known exactly
    tokens = lead + list(tokenizer.prefix)
    positions = []
    for part in protected.segments():
        text = part.text if isinstance(part, Span) else part
        pieces = tokenizer.pieces(text) if text.strip() else []
        if isinstance(part, Span):
            positions.append((len(tokens), len(tokens) + len(pieces)) if pieces else None)
        tokens += pieces
    tokens += tokenizer.suffix
    return _Encoded(tokens, tuple(positions), (None,) * len(protected.spans))


def translate_with_model(
    model: LoadedModel,
    items: Sequence[tuple[ModelTranslation, str | ProtectedSentence]],
    options: TranslateOptions,
) -> list[str]:
    """Translate (leg, sentence) items that all use `model` in ONE `translate_batch` call;
    the legs may differ in direction (one many-to-many model serving several targets).
    Protected spans come back as their `output` (see the module's docstring)."""
    tokenizer = model.tokenizer
    manifest = model.manifest
    protected = [s if isinstance(s, ProtectedSentence) else ProtectedSentence(s) for _, s in items]
    method = protection_method(model) if any(p.spans for p in protected) else ALIGNMENT
    encoded: list[_Encoded] = []
    sources: list[list[str]] = []
    prefixes: list[list[str]] = []
    for (leg, _), sentence in zip(items, protected):
        lead = leg.source_tokens()
        enc = _encode(tokenizer, sentence, method, lead)
        encoded.append(enc)
        sources.append(
            _fit(enc.tokens, manifest.input_limit, len(lead) + len(tokenizer.prefix), len(tokenizer.suffix))
        )
        prefixes.append(leg.target_prefix() or [])
    use_prefix = any(prefixes)
    with_attention = any(p.spans for p in protected)
    results = model.translate_batch_attention(
        sources,
        target_prefix=prefixes if use_prefix else None,
        beam_size=options.beam_size,
        length_penalty=options.length_penalty,
        batch_type="tokens",
        max_batch_size=options.max_batch_tokens,
        max_input_length=0,  # inputs were fitted above, keeping their end-of-sentence token
        # the limit counts the target prefix too
        max_decoding_length=_decoding_limit(sources, manifest.input_limit, options) + max(len(p) for p in prefixes),
        replace_unknowns=manifest.replace_unknowns,
        return_attention=with_attention,
    )
    outputs: list[str] = []
    plain: list[list[str]] = []
    for (hypothesis, attention), prefix, sentence, enc, source in zip(results, prefixes, protected, encoded, sources):
        # CTranslate2 returns the target prefix as part of the hypothesis: drop it.
        tokens = hypothesis[len(prefix) :]
        if not sentence.spans:
            plain.append(tokens)
            outputs.append("")
            continue
        rows = attention[len(prefix) :] if attention is not None else None
        outputs.append(_restore(tokenizer, tokens, rows, sentence, enc, len(source)))
    decoded = iter(tokenizer.decode(plain)) if plain else iter(())
    return [out if sentence.spans else next(decoded) for out, sentence in zip(outputs, protected)]


def _longest_run(positions: list[int]) -> tuple[int, int] | None:
    """The longest stretch of consecutive positions, as (start, end); the first of equals."""
    best: tuple[int, int] | None = None
    start = None
    for i, position in enumerate(positions):
        if start is None or position != positions[i - 1] + 1:
            start = position
        if best is None or position + 1 - start > best[1] - best[0]:
            best = (start, position + 1)
    return best


_NO_SPACE_AFTER = tuple("([{«¿¡“‘")
_NO_SPACE_BEFORE = tuple(".,;:!?)]}»%”’…")
_UNSPACED_SCRIPT = re.compile(r"[\u0e00-\u0e7f\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]")
_FINAL_PUNCTUATION = re.compile(r"[.!?。！？…]+[\"'”’»)]*$")


def _join(parts: list[str]) -> str:
    """Decoded stretches and restored spans, spaced as text usually is."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not (
            out.endswith(_NO_SPACE_AFTER)
            or part.startswith(_NO_SPACE_BEFORE)
            or _UNSPACED_SCRIPT.match(out[-1])
            or _UNSPACED_SCRIPT.match(part[0])
            or out[-1].isspace()
        ):
            out += " "
        out += part
    return out


def _restore(
    tokenizer: Tokenizer,
    tokens: list[str],
    attention: list[list[float]] | None,
    sentence: ProtectedSentence,
    enc: _Encoded,
    source_length: int,
) -> str:
    """The output text with every span of `sentence` put back as its `output`."""
    spans = sentence.spans
    placed: list[tuple[int, int] | None] = [None] * len(spans)
    skip: set[int] = set()  # output positions a span replaces, or stray placeholder copies
    satisfied = [False] * len(spans)
    # 1. placeholders the model copied (a second copy of one is dropped: one fact, once)
    for k, placeholder in enumerate(enc.placeholders):
        if placeholder is None:
            continue
        hits = [t for t, token in enumerate(tokens) if token == placeholder]
        if hits:
            placed[k] = (hits[0], hits[0] + 1)
        skip.update(hits)
    # 2. alignment: a span the model already wrote as required stays as the model wrote it
    if any(p is None for p in enc.placeholders):
        plain = tokenizer.decode([[t for i, t in enumerate(tokens) if i not in skip]])[0]
        for k, span in enumerate(spans):
            if enc.placeholders[k] is None and plain.count(span.output) >= sum(s.output == span.output for s in spans[: k + 1]):
                satisfied[k] = True
    # 3. the rest: the output tokens attending to the span's source tokens
    if attention:
        aligned = [max(range(len(row)), key=row.__getitem__) if row else -1 for row in attention]
        for k in range(len(spans)):
            if placed[k] is not None or satisfied[k] or enc.span_tokens[k] is None:
                continue
            start, end = enc.span_tokens[k]
            if start >= source_length:
                continue  # cut off with an over-long input
            targets = [t for t, s in enumerate(aligned[: len(tokens)]) if start <= s < end and t not in skip]
            run = _longest_run(targets)
            if run is not None:
                # the longest stretch of output aligned to the span stands for it (an outlier
                # token elsewhere must not make it swallow the words in between)
                placed[k] = run
                skip.update(range(*run))
    # 4. compose: decoded stretches between the placed spans
    starts = {p[0]: k for k, p in enumerate(placed) if p is not None}
    runs: list[list[str]] = [[]]
    order: list[int | None] = [None]  # None: the run at that index; k: span k
    for t, token in enumerate(tokens):
        if t in starts:
            order.append(starts[t])
            runs.append([])
            order.append(None)
        elif t not in skip:
            runs[-1].append(token)
    decoded = iter(tokenizer.decode(runs))
    parts = [next(decoded) if k is None else spans[k].output for k in order]
    text = _join(parts)
    # 5. a span the model lost: before the final punctuation, so the fact is never dropped
    lost = [spans[k].output for k in range(len(spans)) if placed[k] is None and not satisfied[k]]
    if lost:
        final = _FINAL_PUNCTUATION.search(text)
        cut = final.start() if final else len(text)
        text = _join([text[:cut].rstrip(), *lost]) + text[cut:]
    return text


def _decoding_limit(sources: Sequence[Sequence[str]], input_limit: int, options: TranslateOptions) -> int:
    """Tokens one call may decode per sentence. (CTranslate2 takes one limit per call; calls
    hold sentences of similar length only in part, so the longest input sets it.)"""
    longest = max(len(s) for s in sources)
    relative = math.ceil(options.max_length_ratio * longest) + options.max_length_slack
    return max(1, min(options.max_decoding_length, input_limit, relative))


def _next_model(routes: Sequence[Route], position: list[int]) -> str:
    """The model to run next: one whose every remaining use is a ready leg (first unrun leg
    of its route), so it is called once for all of them. With pivots, running en→X legs
    before the X'→en legs that feed more en→X work would cost a second call."""
    ready: dict[str, None] = {}
    later: set[str] = set()
    for route, pos in zip(routes, position):
        legs = route.legs[pos:]
        if legs:
            ready.setdefault(legs[0].name)
            later.update(leg.name for leg in legs[1:])
    for name in ready:
        if name not in later:
            return name
    return next(iter(ready))  # routes that need each other's models in crossed order


def translate_jobs(
    jobs: Sequence[tuple[Route, Sequence[str | ProtectedSentence]]],
    cache: ModelCache,
    memory: TranslationMemory | None = None,
    options: TranslateOptions | None = None,
) -> list[list[str]]:
    """Translate every job's sentences along its route; one output list per job.

    Routes run leg by leg, in rounds: each round picks one model and translates the ready
    leg of every job that uses it — from any job, in any direction — in one
    `translate_batch` call. Rounds are ordered so that each model is normally called once
    (pivot first legs before the en→X legs they feed, which share a call with direct en→X
    jobs). Identical (model, direction, sentence) inputs are translated once; the
    translation memory, if any, is asked first and filled after.

    A sentence may come protected (`pipeline.protect.ProtectedSentence`): its spans come
    out unchanged, a glossary term as its rendering. Between the legs of a pivot the spans
    travel as their source text and are protected again for the next leg.
    """
    options = options or TranslateOptions()
    routes = [route for route, _ in jobs]
    for route in routes:
        if not hasattr(route, "legs"):
            raise TypeError(f"not a models.translation route: {route!r}")
    originals: list[list[ProtectedSentence]] = [[_protected(s) for s in sentences] for _, sentences in jobs]
    texts: list[list[ProtectedSentence]] = [list(sentences) for sentences in originals]
    position = [0] * len(routes)

    def leg_input(j: int, i: int) -> ProtectedSentence:
        last = position[j] == len(routes[j].legs) - 1
        return texts[j][i] if last else texts[j][i].carried()

    while any(pos < len(route.legs) for route, pos in zip(routes, position)):
        name = _next_model(routes, position)
        # the jobs whose next leg uses this model, and their unique inputs in first-seen order
        users = [j for j, route in enumerate(routes) if position[j] < len(route.legs)
                 and route.legs[position[j]].name == name]
        items: dict[tuple[str, str, str], tuple[ModelTranslation, ProtectedSentence]] = {}
        for j in users:
            leg = routes[j].legs[position[j]]
            for i, sentence in enumerate(texts[j]):
                if sentence.text:
                    sent = leg_input(j, i)
                    items.setdefault((leg.source, leg.target, sent.memory_text), (leg, sent))

        done: dict[tuple[str, str, str], str] = {}
        if memory is not None and items:
            keys = list(items)
            remembered = memory.get_many([memory_key(name, *key) for key in keys])
            done.update({key: text for key, text in zip(keys, remembered) if text is not None})
        todo = [(key, item) for key, item in items.items() if key not in done]
        if todo:
            outputs = translate_with_model(cache.get(name), [item for _, item in todo], options)
            learned = {}
            for (key, _), output in zip(todo, outputs):
                done[key] = output
                learned[memory_key(name, *key)] = output
            if memory is not None:
                memory.set_many(learned)

        for j in users:
            leg = routes[j].legs[position[j]]
            last = position[j] == len(routes[j].legs) - 1
            translated = []
            for i, sentence in enumerate(texts[j]):
                if not sentence.text:
                    translated.append(sentence)
                    continue
                output = normalize_sentence(done[(leg.source, leg.target, leg_input(j, i).memory_text)])
                # the next leg protects the same spans again, found in this leg's output
                translated.append(ProtectedSentence(output) if last else originals[j][i].relocate(output))
            texts[j] = translated
            position[j] += 1
    return [[sentence.text for sentence in sentences] for sentences in texts]


def _protected(sentence: str | ProtectedSentence) -> ProtectedSentence:
    if isinstance(sentence, ProtectedSentence):
        return sentence
    return ProtectedSentence(normalize_sentence(sentence))
