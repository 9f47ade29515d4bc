"""`babelwire glossary …`: the newsroom's glossaries in the SQL store.

    glossary import FILE.tsv|FILE.csv [--json]
    glossary list [--source en] [--target de] [--json]
    glossary remove SOURCE TARGET TERM... | SOURCE TARGET --all

A file has one term per row: `source, target, term, rendering` (tab-separated for .tsv,
comma-separated with CSV quoting for .csv; a first row `source,target,term,rendering` is a
header). An empty or missing rendering keeps the term as it is (names, brands, programme
titles). Empty rows and rows starting with `#` are skipped. Malformed rows are rejected
with their line numbers; the others are imported (exit 1 when any row was rejected).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import typer

from pipeline.article import Limits
from pipeline.languages import is_known, normalize_code
from worker.cli.app import EXIT_FAILED, EXIT_OK, app, fail, print_json
from worker.cli.queue_cmds import _settings, open_store
from worker.store.glossary import GlossaryEntry

glossary_app = typer.Typer(help="Glossaries: terms translation must render as given, or keep as they are.",
                           no_args_is_help=True)
app.add_typer(glossary_app, name="glossary")

HEADER = ["source", "target", "term", "rendering"]
MAX_TERM_CHARS = Limits().max_term_chars


@dataclass(frozen=True)
class GlossaryFile:
    entries: list[GlossaryEntry]
    rejected: list[str]  # "FILE:LINE: why"


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE)
        first = True
        for row in reader:
            line = reader.line_num
            if first and [c.strip().lower() for c in row] == HEADER[: len(row)] and len(row) >= 3:
                first = False
                continue
            first = False
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            yield line, row


def _language(code: str, column: str) -> str:
    normalized = normalize_code(code) if code.strip() else ""
    if not normalized:
        raise ValueError(f"{column}: a language code is required")
    if not is_known(normalized):
        raise ValueError(f"{column}: unknown language code {code.strip()!r} (use ISO 639-1, e.g. 'de')")
    return normalized


def _text(value: str, column: str, required: bool) -> str | None:
    value = " ".join(value.split())
    if not value:
        if required:
            raise ValueError(f"{column}: must not be empty")
        return None
    if len(value) > MAX_TERM_CHARS:
        raise ValueError(f"{column}: at most {MAX_TERM_CHARS} characters (got {len(value):,})")
    if "\0" in value:
        raise ValueError(f"{column}: must not contain NUL characters (\\x00)")
    return value


def read_glossary_file(path: Path) -> GlossaryFile:
    """Every well-formed row as an entry; every other row as `FILE:LINE: why`."""
    entries: list[GlossaryEntry] = []
    rejected: list[str] = []
    seen: dict[tuple[str, str, str], tuple[int, str | None]] = {}
    try:
        for line, row in _rows(path):
            try:
                if not 3 <= len(row) <= 4:
                    raise ValueError(f"expected 3 or 4 columns ({', '.join(HEADER)}), got {len(row)}")
                source, target = _language(row[0], "source"), _language(row[1], "target")
                if source == target:
                    raise ValueError(f"source and target are both {source!r}")
                term = _text(row[2], "term", required=True)
                rendering = _text(row[3], "rendering", required=False) if len(row) == 4 else None
                assert term is not None
                earlier = seen.get((source, target, term))
                if earlier is not None and earlier[1] != rendering:
                    raise ValueError(f"term {term!r} ({source}→{target}) is already on line {earlier[0]} "
                                     "with another rendering")
                seen[(source, target, term)] = (line, rendering)
                entries.append(GlossaryEntry(source, target, term, rendering))
            except ValueError as exc:
                rejected.append(f"{path}:{line}: {exc}")
    except csv.Error as exc:
        rejected.append(f"{path}: not readable as {'CSV' if path.suffix.lower() == '.csv' else 'TSV'}: {exc}")
    except UnicodeDecodeError as exc:
        rejected.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start:,})")
    return GlossaryFile(entries, rejected)


@glossary_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="a .tsv or .csv file: source, target, term, rendering (empty: keep)"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Add or replace terms; malformed rows are rejected with their line numbers."""
    if file.suffix.lower() not in (".tsv", ".csv", ".txt"):
        raise fail(f"{file}: give a .tsv or .csv file")
    if not file.is_file():
        raise fail(f"{file}: no such file")
    parsed = read_glossary_file(file)
    settings = _settings()
    store = open_store(settings)
    try:
        written = store.import_glossary(parsed.entries)
        versions = store.glossary_versions()
    finally:
        store.close()
    for line in parsed.rejected:
        typer.echo(f"rejected {line}", err=True)
    if json_out:
        print_json({
            "imported": sum(written.values()),
            "directions": {f"{s}-{t}": {"terms": n, "version": versions.get((s, t))} for (s, t), n in written.items()},
            "rejected": parsed.rejected,
        })
    else:
        per_pair = ", ".join(f"{s}→{t}: {n} (version {versions.get((s, t))})" for (s, t), n in sorted(written.items()))
        typer.echo(f"imported {sum(written.values())} terms" + (f" ({per_pair})" if per_pair else "")
                   + (f"; rejected {len(parsed.rejected)} rows" if parsed.rejected else ""))
    raise typer.Exit(EXIT_FAILED if parsed.rejected else EXIT_OK)


@glossary_app.command("list")
def list_(
    source: Optional[str] = typer.Option(None, "--source", help="only terms from this language"),
    target: Optional[str] = typer.Option(None, "--target", help="only terms into this language"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per term"),
) -> None:
    """The terms, by direction: source, target, term, rendering (or "(keep)")."""
    try:
        source = _language(source, "--source") if source else None
        target = _language(target, "--target") if target else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    store = open_store(_settings())
    try:
        entries = store.glossary_entries(source=source, target=target)
    finally:
        store.close()
    for entry in entries:
        if json_out:
            print_json(entry.to_dict())
        else:
            typer.echo("\t".join([entry.source, entry.target, entry.term, entry.rendering or "(keep)"]))


@glossary_app.command("remove")
def remove(
    source: str = typer.Argument(..., help="source language"),
    target: str = typer.Argument(..., help="target language"),
    terms: Optional[list[str]] = typer.Argument(None, help="the terms to remove"),
    all_terms: bool = typer.Option(False, "--all", help="remove every term of this direction"),
) -> None:
    """Remove terms of one direction (or all of them with --all)."""
    try:
        source, target = _language(source, "SOURCE"), _language(target, "TARGET")
    except ValueError as exc:
        raise fail(str(exc)) from None
    if bool(terms) == all_terms:
        raise fail("name the terms to remove, or give --all (not both)")
    store = open_store(_settings())
    try:
        removed = store.remove_glossary(source, target, None if all_terms else [" ".join(t.split()) for t in terms or []])
    finally:
        store.close()
    typer.echo(f"removed {removed} terms ({source}→{target})")
    if terms and removed < len(set(terms)):
        typer.echo(f"{len(set(terms)) - removed} of the terms named were not in the {source}→{target} glossary", err=True)
        raise typer.Exit(EXIT_FAILED)
