"""`babelwire clean` and `babelwire process`: the pipeline in-process, no broker."""

from __future__ import annotations

import sys
from itertools import islice
from typing import Iterator, Optional

import typer

from pipeline.article import Article, validate_article
from pipeline.exceptions import ArticleError
from pipeline.languages import is_known, normalize_code
from pipeline.result import FAILED, Result
from worker.cli.app import EXIT_FAILED, EXIT_OK, app, fail, print_json
from worker.config import Settings, get_settings
from worker.inputs import read_inputs

BATCH_SIZE = 16  # articles processed together: model calls are batched across them


def parse_targets(to: str | None) -> list[str] | None:
    """`--to de,fr` → ["de", "fr"]; an unknown code is a usage error (exit 2)."""
    if to is None:
        return None
    codes = [normalize_code(c) for c in to.split(",") if c.strip()]
    for code in codes:
        if not is_known(code):
            raise fail(f"--to: unknown language code {code!r} (use ISO 639-1 codes, e.g. de,fr)")
    return codes


def _valid_articles(
    path: str, settings: Settings, targets: list[str] | None, rejected: list[str]
) -> Iterator[Article]:
    try:
        records = read_inputs(path)
        for record in records:
            where = f"{record.source}:{record.line}"
            if record.error:
                rejected.append(f"{where}: {record.error}")
                continue
            data = dict(record.data or {})
            if targets is not None:
                data["targets"] = targets
            try:
                yield validate_article(data, settings.limits)
            except ArticleError as exc:
                rejected.append(f"{where}: {exc}")
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None


def _report_rejected(rejected: list[str]) -> bool:
    """Print and forget the rejections so far; True when there were any."""
    for line in rejected:
        typer.echo(f"rejected {line}", err=True)
    any_rejected = bool(rejected)
    rejected.clear()
    return any_rejected


@app.command()
def clean(
    input: str = typer.Argument(
        ..., help="a .txt/.md or .html/.htm page, .json, .jsonl, .csv, a folder of pages, or - for stdin"
    ),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per article"),
) -> None:
    """Show what the pipeline reads: cleaned title and text, language, sentences; for HTML
    also the subheadings kept as structure and what the page says of itself (metadata)."""
    from pipeline.process import prepare

    settings = get_settings()
    rejected: list[str] = []
    failed = False
    for article in _valid_articles(input, settings, None, rejected):
        failed |= _report_rejected(rejected)
        p = prepare(article)
        view = {
            "title": p.cleaned.title,
            "text": p.cleaned.text,
            "lang": p.lang,
            "confidence": round(p.detection.confidence, 4),
            "sentences": p.sentences,
            "headings": p.cleaned.headings,
            "metadata": p.cleaned.extracted.metadata() if p.cleaned.extracted is not None else {},
        }
        if json_out:
            print_json(view)
        else:
            typer.echo(f"# {view['title'] or '(no title)'}")
            for key, value in view["metadata"].items():
                typer.echo(f"{key}: {value}")
            typer.echo(f"language: {view['lang']} (confidence {view['confidence']:.2f})")
            for heading in view["headings"]:
                typer.echo(f"subheading: {heading}")
            for i, sentence in enumerate(view["sentences"], 1):
                typer.echo(f"{i:3}. {sentence}")
    failed |= _report_rejected(rejected)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _print_result(result: Result) -> None:
    typer.echo(f"== {result.external_id or result.article_id}  [{result.status}]")
    if result.source_lang:
        typer.echo(f"source: {result.source_lang} (confidence {result.source_lang_confidence:.2f})")
    for lang in sorted(set(result.title) | set(result.summary)):
        model = result.models.get(lang) or ("summary: " + result.models.get("summary", ""))
        typer.echo(f"--- {lang}  ({model})")
        if lang in result.title:
            typer.echo(f"title:   {result.title[lang]}")
        if lang in result.summary:
            typer.echo(f"summary: {result.summary[lang]}")
    for lang, error in result.errors.items():
        typer.echo(f"!!! {lang}: {error}")
    typer.echo("timings: " + ", ".join(f"{k} {v} ms" for k, v in result.timings_ms.items()))


@app.command()
def process(
    input: str = typer.Argument(
        ..., help="a .txt/.md or .html/.htm page, .json, .jsonl, .csv, a folder of pages, or - for stdin"
    ),
    to: Optional[str] = typer.Option(None, "--to", help="target languages, e.g. de,fr (default: BABELWIRE_TARGETS)"),
    json_out: bool = typer.Option(False, "--json", help="results as JSON lines (see docs/contracts.md)"),
) -> None:
    """Run the whole pipeline in this process on INPUT (no broker, no database)."""
    from pipeline.process import process_batch
    from worker.runtime import build_engines

    settings = get_settings()
    targets = parse_targets(to)
    engines = build_engines(settings)
    rejected: list[str] = []
    any_failed = False
    articles = _valid_articles(input, settings, targets, rejected)
    while batch := list(islice(articles, BATCH_SIZE)):
        any_failed |= _report_rejected(rejected)
        for result in process_batch(batch, engines):
            any_failed |= result.status == FAILED
            if json_out:
                print_json(result.to_dict())
            else:
                _print_result(result)
        sys.stdout.flush()
    any_failed |= _report_rejected(rejected)
    raise typer.Exit(EXIT_FAILED if any_failed else EXIT_OK)
