"""`process()`: one article (or a batch) becomes a multilingual summary (docs/architecture.md, steps 3–7).

Stages: clean → detect → segment → summarize → translate. Work that goes to models is
batched across all articles of the call: every chunk bound for one summarizer is one call,
every sentence bound for one translation model is one call (the engines group by model).
Storing is the caller's business; this module is pure apart from the engines it is handed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from pipeline.article import Article
from pipeline.checks import Checks, check_translation
from pipeline.clean import Cleaned, clean_input
from pipeline.corrections import CorrectionSource
from pipeline.detect import Detection, detect_language
from pipeline.engines import Engines, Summarizer, Translation
from pipeline.exceptions import NoModelError
from pipeline.extractive import rank_sentences
from pipeline.languages import PIVOT, join_sentences
from pipeline.protect import Glossaries, Glossary, GlossarySource, ProtectedSentence, keep_case, protect
from pipeline.result import DONE, FAILED, PARTIAL, Result
from pipeline.segment import pack_chunks, split_sentences

EXTRACTIVE = "extractive"
MAX_REDUCE_ROUNDS = 4  # map→reduce depth; past it the chunk summaries are ranked extractively


@dataclass(frozen=True)
class ProcessOptions:
    pivot: str = PIVOT
    # Translate the summary back into the article's own language when it was made in the pivot.
    summary_in_source_lang: bool = True
    # Numbers, URLs, names and glossary terms pass through translation unchanged (README,
    # "Fidelity"); off only to show what the models do without it. Checks run either way.
    protect: bool = True
    glossaries: GlossarySource = field(default_factory=Glossaries)
    # editors' translations of sentences (worker: the store's), used instead of the model's
    corrections: CorrectionSource | None = None


@dataclass
class Prepared:
    """An article after the text stages: what `babelwire clean` shows."""

    article: Article
    cleaned: Cleaned
    detection: Detection
    sentences: list[str]
    timings_ms: dict[str, int] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.detection.lang


@dataclass
class _Work:
    """One article's state through the model stages."""

    prepared: Prepared
    result: Result
    summary_lang: str = ""
    # what the summarizer reads: the article's sentences, or their pivot translation
    summary_input: list[str] = field(default_factory=list)
    summary_sentences: list[str] = field(default_factory=list)


@contextmanager
def _timed(timings: dict[str, int], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0) + round((time.perf_counter() - start) * 1000)


def prepare(article: Article) -> Prepared:
    """Clean, detect and segment one article (no models involved)."""
    timings: dict[str, int] = {}
    with _timed(timings, "clean"):
        cleaned = clean_input(article.title, article.text, article.html, article.url, article.lang)
    with _timed(timings, "detect"):
        detection = detect_language(cleaned.text or (cleaned.title or ""), hint=article.lang)
    with _timed(timings, "segment"):
        sentences = split_sentences(cleaned.text, detection.lang)
    return Prepared(article, cleaned, detection, sentences, timings)


def process(article: Article, engines: Engines, options: ProcessOptions | None = None) -> Result:
    return process_batch([article], engines, options)[0]


def process_batch(
    articles: Sequence[Article], engines: Engines, options: ProcessOptions | None = None
) -> list[Result]:
    """Process articles together; one article's failure never costs another its result."""
    options = options or ProcessOptions()
    works: list[_Work] = []
    for article in articles:
        result = Result(article_id=article.key, external_id=article.id)
        try:
            prepared = prepare(article)
        except Exception as exc:  # a bug in a text stage must not take the batch down
            result.status, result.errors["article"] = FAILED, f"text stages: {exc}"
            works.append(_Work(prepared=None, result=result))  # type: ignore[arg-type]
            continue
        result.source_lang = prepared.lang
        result.source_lang_confidence = round(prepared.detection.confidence, 4)
        result.timings_ms.update(prepared.timings_ms)
        result.cleaned_text = prepared.cleaned.document
        if prepared.cleaned.title:
            result.title[prepared.lang] = prepared.cleaned.title
        if not prepared.sentences:
            if article.html is not None:
                result.status, result.errors["html"] = FAILED, "no article text found in the page"
            else:
                result.status, result.errors["text"] = FAILED, "no sentences left after cleaning"
        works.append(_Work(prepared, result))

    live = [w for w in works if w.result.status != FAILED]
    _summarize(live, engines, options)
    _translate(live, engines, options)
    for w in works:
        if w.result.status != FAILED:
            w.result.status = PARTIAL if w.result.errors else DONE
    return [w.result for w in works]


# --- summarize ---------------------------------------------------------------------------


def _summarize(works: list[_Work], engines: Engines, options: ProcessOptions) -> None:
    """Abstractive where a summarizer serves the language, via the pivot where one serves it,
    else extractive, so a summary always exists."""
    by_summarizer: dict[str, tuple[Summarizer, list[_Work]]] = {}
    to_pivot: list[tuple[_Work, Translation, Summarizer]] = []
    started = time.perf_counter()
    for w in works:
        lang = w.prepared.lang
        summarizer = engines.summarizer(lang)
        if summarizer is not None:
            w.summary_lang, w.summary_input = lang, w.prepared.sentences
            by_summarizer.setdefault(summarizer.name, (summarizer, []))[1].append(w)
            continue
        pivot_summarizer = engines.summarizer(options.pivot) if lang != options.pivot else None
        if pivot_summarizer is not None:
            try:
                to_pivot.append((w, engines.translation(lang, options.pivot), pivot_summarizer))
                continue
            except NoModelError:
                pass
        _summarize_extractive(w, w.prepared.sentences, w.prepared.lang)

    if to_pivot:
        # Articles no summarizer serves go to the pivot language first (one batched call).
        outputs = _translate_safely(
            [(route, _protect(w, route, w.prepared.sentences, options) if options.protect else w.prepared.sentences)
             for w, route, _ in to_pivot],
            engines,
        )
        for (w, route, summarizer), out in zip(to_pivot, outputs):
            if isinstance(out, Exception):
                w.result.errors[options.pivot] = f"pivot for summary: {out}"
                _summarize_extractive(w, w.prepared.sentences, w.prepared.lang)
                continue
            w.summary_lang, w.summary_input = options.pivot, out
            w.result.models["summary_pivot"] = route.name
            by_summarizer.setdefault(summarizer.name, (summarizer, []))[1].append(w)

    for summarizer, group in by_summarizer.values():
        for w, text in zip(group, _summarize_safely(summarizer, group)):
            if isinstance(text, Exception):  # a broken model or input: extractive, and say so
                w.result.errors["summary"] = f"{summarizer.name} failed ({text}); extractive summary instead"
                _summarize_extractive(w, w.summary_input, w.summary_lang)
                continue
            limit = w.prepared.article.summary.max_sentences
            w.summary_sentences = split_sentences(text, w.summary_lang)[:limit] or [text]
            w.result.models["summary"] = summarizer.name

    elapsed = round((time.perf_counter() - started) * 1000)
    for w in works:
        w.result.timings_ms["summarize"] = elapsed
        w.result.summary[w.summary_lang] = join_sentences(w.summary_sentences, w.summary_lang)


def _summarize_safely(summarizer: Summarizer, group: list[_Work]) -> list[str | Exception]:
    """One batched map→reduce; if it fails, again article by article, so an input that breaks
    the model costs only its own abstractive summary, not its batch's."""
    max_tokens = max(w.prepared.article.summary.max_tokens for w in group)
    try:
        return list(_map_reduce(summarizer, [w.summary_input for w in group], max_tokens))
    except Exception as exc:
        if len(group) == 1:
            return [exc]
    outputs: list[str | Exception] = []
    for w in group:
        try:
            outputs.extend(_map_reduce(summarizer, [w.summary_input], w.prepared.article.summary.max_tokens))
        except Exception as exc:
            outputs.append(exc)
    return outputs


def _summarize_extractive(w: _Work, sentences: list[str], lang: str) -> None:
    w.summary_lang = lang
    w.summary_sentences = rank_sentences(sentences, lang, w.prepared.article.summary.max_sentences)
    w.result.models["summary"] = EXTRACTIVE


def _map_reduce(summarizer: Summarizer, articles: list[list[str]], max_tokens: int) -> list[str]:
    """Summarize each article's chunks (map), then the joined chunk summaries (reduce) until
    each article is down to one text. Every round is one batched call over all articles."""
    pending: dict[int, list[str]] = {i: sentences for i, sentences in enumerate(articles)}
    done: dict[int, str] = {}
    for round_no in range(MAX_REDUCE_ROUNDS + 1):
        chunks: list[tuple[int, str]] = []
        for i, sentences in pending.items():
            for chunk in pack_chunks(sentences, summarizer.count_tokens, summarizer.max_input_tokens):
                chunks.append((i, " ".join(chunk)))
        outputs = summarizer.summarize_batch([text for _, text in chunks], max_tokens)
        per_article: dict[int, list[str]] = {}
        for (i, _), out in zip(chunks, outputs):
            per_article.setdefault(i, []).append(out.strip())
        next_pending: dict[int, list[str]] = {}
        for i, parts in per_article.items():
            if len(parts) == 1:
                done[i] = parts[0]
            elif round_no == MAX_REDUCE_ROUNDS:
                done[i] = " ".join(rank_sentences(parts, "", 3))
            else:
                next_pending[i] = parts
        if not next_pending:
            break
        pending = next_pending
    return [done.get(i, "") for i in range(len(articles))]


# --- translate ---------------------------------------------------------------------------


@dataclass
class _Job:
    work: _Work
    kind: str  # "title" | "summary"
    lang: str
    route: Translation
    sentences: list[str]


def _translate(works: list[_Work], engines: Engines, options: ProcessOptions) -> None:
    """Title and summary into every target; all articles' sentences go in one engines call."""
    jobs: list[_Job] = []
    started = time.perf_counter()
    for w in works:
        source_lang, summary_lang = w.prepared.lang, w.summary_lang
        title = w.prepared.cleaned.title
        targets = list(w.prepared.article.targets or ())
        if options.summary_in_source_lang and summary_lang != source_lang and source_lang not in targets:
            targets.append(source_lang)  # the summary in the article's own language
        for target in targets:
            if target != summary_lang:
                try:
                    route = engines.translation(summary_lang, target)
                except NoModelError as exc:
                    w.result.errors[target] = str(exc)
                else:
                    jobs.append(_Job(w, "summary", target, route, w.summary_sentences))
            if title and target != source_lang:
                try:
                    route = engines.translation(source_lang, target)
                except NoModelError as exc:
                    w.result.errors.setdefault(target, str(exc))
                else:
                    jobs.append(_Job(w, "title", target, route, [title]))

    protected = [_protect(job.work, job.route, job.sentences, options) for job in jobs]
    outputs = _translate_safely(
        [(job.route, sentences if options.protect else job.sentences) for job, sentences in zip(jobs, protected)],
        engines,
    )
    checks: dict[tuple[int, str], Checks] = {}
    for job, sentences, out in zip(jobs, protected, outputs):
        result = job.work.result
        if isinstance(out, Exception):
            result.errors[job.lang] = f"{job.route.name}: {out}"
            continue
        out = [keep_case(source.text, translated) for source, translated in zip(sentences, out)]
        if options.corrections is not None:
            out = [options.corrections.get(job.route.source, job.lang, source.text) or translated
                   for source, translated in zip(sentences, out)]
        key = (id(job.work), job.lang)
        checks[key] = checks.get(key, Checks()) + check_translation(job.kind, sentences, out)
        result.checks[job.lang] = checks[key].to_dict()
        text = join_sentences(out, job.lang)
        getattr(result, job.kind)[job.lang] = text
        if job.kind == "summary" or job.lang not in result.models:
            result.models[job.lang] = job.route.name

    elapsed = round((time.perf_counter() - started) * 1000)
    for w in works:
        w.result.timings_ms["translate"] = elapsed
        # The source language is only an extra; its failure is not the article's.
        if w.prepared.lang not in (w.prepared.article.targets or ()):
            w.result.errors.pop(w.prepared.lang, None)


def _glossaries(w: _Work, source: str, target: str, options: ProcessOptions) -> list[Glossary]:
    """The terms that apply source→target, the article's own first."""
    article = w.prepared.article
    found = [
        Glossary.of(keep=article.keep, render=article.glossary.get(target)),
        options.glossaries.get(source, target),
    ]
    return [g for g in found if g is not None and len(g)]


def _protect(w: _Work, route: Translation, sentences: Sequence[str], options: ProcessOptions) -> list[ProtectedSentence]:
    glossaries = _glossaries(w, route.source, route.target, options)
    return [protect(sentence, glossaries) for sentence in sentences]


def _translate_safely(
    jobs: list[tuple[Translation, Sequence[str]]], engines: Engines
) -> list[list[str] | Exception]:
    """One batched call; if it fails, retry job by job so one broken model or input costs
    only its own language, not the batch."""
    if not jobs:
        return []
    try:
        return list(engines.translate(jobs))
    except Exception:
        outputs: list[list[str] | Exception] = []
        for job in jobs:
            try:
                outputs.append(engines.translate([job])[0])
            except Exception as exc:
                outputs.append(exc)
        return outputs
