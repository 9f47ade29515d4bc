"""Translation engine: routes are compositions of single-model translations; all sentences
bound for one model are translated in one `translate_batch` call.

A `ModelTranslation` is one model driven in one direction (with the target selection its
family needs). A `PivotTranslation` is two translations composed, as in Argos Translate —
not a special case: `translate_jobs` runs every route leg by leg, batching legs by model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

from models.loader import LoadedModel, ModelCache
from models.manifest import Manifest, ManifestError
from models.memory import TranslationMemory, memory_key, normalize_sentence


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


def translate_with_model(
    model: LoadedModel,
    items: Sequence[tuple[ModelTranslation, str]],
    options: TranslateOptions,
) -> list[str]:
    """Translate (leg, sentence) items that all use `model` in ONE `translate_batch` call;
    the legs may differ in direction (one many-to-many model serving several targets)."""
    tokenizer = model.tokenizer
    manifest = model.manifest
    encoded = tokenizer.encode([sentence for _, sentence in items])
    sources: list[list[str]] = []
    prefixes: list[list[str]] = []
    for (leg, _), tokens in zip(items, encoded):
        lead = leg.source_tokens()
        sources.append(
            _fit(lead + tokens, manifest.input_limit, len(lead) + len(tokenizer.prefix), len(tokenizer.suffix))
        )
        prefixes.append(leg.target_prefix() or [])
    use_prefix = any(prefixes)
    hypotheses = model.translate_batch(
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
    )
    # CTranslate2 returns the target prefix as part of the hypothesis: drop it.
    outputs = [hyp[len(prefix) :] for hyp, prefix in zip(hypotheses, prefixes)]
    return tokenizer.decode(outputs)


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
    jobs: Sequence[tuple[Route, Sequence[str]]],
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
    """
    options = options or TranslateOptions()
    routes = [route for route, _ in jobs]
    for route in routes:
        if not hasattr(route, "legs"):
            raise TypeError(f"not a models.translation route: {route!r}")
    texts: list[list[str]] = [[normalize_sentence(s) for s in sentences] for _, sentences in jobs]
    position = [0] * len(routes)

    while any(pos < len(route.legs) for route, pos in zip(routes, position)):
        name = _next_model(routes, position)
        # the jobs whose next leg uses this model, and their unique inputs in first-seen order
        users = [j for j, route in enumerate(routes) if position[j] < len(route.legs)
                 and route.legs[position[j]].name == name]
        items: dict[tuple[str, str, str], ModelTranslation] = {}
        for j in users:
            leg = routes[j].legs[position[j]]
            for sentence in texts[j]:
                if sentence:
                    items.setdefault((leg.source, leg.target, sentence), leg)

        done: dict[tuple[str, str, str], str] = {}
        if memory is not None and items:
            keys = list(items)
            remembered = memory.get_many([memory_key(name, *key) for key in keys])
            done.update({key: text for key, text in zip(keys, remembered) if text is not None})
        todo = [(key, leg) for key, leg in items.items() if key not in done]
        if todo:
            outputs = translate_with_model(
                cache.get(name), [(leg, sentence) for (_, _, sentence), leg in todo], options
            )
            learned = {}
            for (key, _), output in zip(todo, outputs):
                done[key] = output
                learned[memory_key(name, *key)] = output
            if memory is not None:
                memory.set_many(learned)

        for j in users:
            leg = routes[j].legs[position[j]]
            texts[j] = [normalize_sentence(done[(leg.source, leg.target, s)]) if s else "" for s in texts[j]]
            position[j] += 1
    return texts
