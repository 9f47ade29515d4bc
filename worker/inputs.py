"""Read articles from files for the CLI: .jsonl, .json, .csv, .txt/.md pages, .html/.htm pages
(an article with `html`), a folder of pages, or `-`.

Everything streams: a 1 GB JSONL is read line by line. Each record is yielded with where it
came from (line number, or file name for folders) so a bad one can be reported precisely and
the rest of the batch goes on.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pipeline import safe_json
from pipeline.article import article_from_text
from pipeline.extract import decode_html, looks_like_html

PAGE_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
MAX_LINE_CHARS = 2_000_000  # far above any valid article; stops a runaway line early
# UTF-8, and a byte-order mark at the start of a file is skipped: Excel's "CSV UTF-8" and
# many Windows tools write one, and it would otherwise hide the first CSV column's name
ENCODING = "utf-8-sig"


@dataclass
class InputRecord:
    line: int  # 1-based line (JSONL/CSV), item index (JSON list) or file index (folder)
    source: str  # file name, for messages
    data: dict[str, Any] | None = None
    error: str | None = None


def read_inputs(path: str) -> Iterator[InputRecord]:
    """Yield the records of INPUT; errors are records too, never exceptions."""
    if path == "-":
        yield from _read_stream(sys.stdin, "<stdin>")
        return
    p = Path(path)
    if p.is_dir():
        suffixes = PAGE_SUFFIXES + HTML_SUFFIXES
        # Only the folder's own files: a symbolic link is never followed (it could lead out
        # of the folder, to /etc/passwd), and files are opened with O_NOFOLLOW.
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in suffixes and (f.is_symlink() or f.is_file()))
        for i, f in enumerate(files, 1):
            content = _read_own_file(f)
            if content is None:
                yield InputRecord(i, f.name, error="not a regular file (a symbolic link is never followed: "
                                                   "only the folder's own files are read)")
            elif f.suffix.lower() in HTML_SUFFIXES:
                yield _read_html(content, i, f.name)
            else:
                yield _read_page(content.decode(ENCODING, errors="replace"), i, f.name)
        return
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    suffix = p.suffix.lower()
    if suffix in HTML_SUFFIXES:  # bytes: the page's own <meta charset> says how to read it
        yield _read_html(p.read_bytes(), 1, p.name)
        return
    with p.open(encoding=ENCODING, errors="replace", newline="") as fh:
        if suffix == ".jsonl":
            yield from _read_jsonl(fh, p.name)
        elif suffix == ".json":
            yield from _read_json(fh.read(), p.name)
        elif suffix == ".csv":
            yield from _read_csv(fh, p.name)
        else:
            yield _read_page(fh.read(), 1, p.name)


def _read_own_file(path: Path) -> bytes | None:
    """The bytes of a regular file in a folder; None for a symbolic link (not followed) or
    anything else that is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # never blocks on a FIFO
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        return fh.read()


def _read_stream(fh: io.TextIOBase, name: str) -> Iterator[InputRecord]:
    """stdin: JSONL if the first non-blank character opens an object, else one page."""
    first = ""
    buffered: list[str] = []
    for line in fh:
        buffered.append(line)
        if line.strip():
            first = line.lstrip()[0]
            break
    if first == "{":
        yield from _read_jsonl(_chain(buffered, fh), name)
    elif first == "[":
        yield from _read_json("".join(buffered) + fh.read(), name)
    else:
        yield _read_page("".join(buffered) + fh.read(), 1, name)


def _read_html(data: bytes, index: int, name: str) -> InputRecord:
    return InputRecord(index, name, data={"html": decode_html(data)})


def _chain(head: list[str], rest: Any) -> Iterator[str]:
    yield from head
    yield from rest


def _read_page(text: str, index: int, name: str) -> InputRecord:
    if looks_like_html(text):  # an HTML page piped in, or saved as .txt
        return InputRecord(index, name, data={"html": text})
    return InputRecord(index, name, data=article_from_text(text))


def _read_jsonl(lines: Any, name: str) -> Iterator[InputRecord]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            yield InputRecord(n, name, error=f"line longer than {MAX_LINE_CHARS:,} characters")
            continue
        try:
            data = safe_json.loads(line)
        except ValueError as exc:  # bad JSON, or nested deeper than safe_json allows
            yield InputRecord(n, name, error=_json_error(exc))
            continue
        if not isinstance(data, dict):
            yield InputRecord(n, name, error=f"article: must be a JSON object (got {type(data).__name__})")
            continue
        yield InputRecord(n, name, data=data)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return f"invalid JSON: {exc}"


def _read_json(text: str, name: str) -> Iterator[InputRecord]:
    try:
        data = safe_json.loads(text)
    except ValueError as exc:
        yield InputRecord(getattr(exc, "lineno", 1), name, error=_json_error(exc))
        return
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items, 1):
        if isinstance(item, dict):
            yield InputRecord(i, name, data=item)
        else:
            yield InputRecord(i, name, error=f"article: must be a JSON object (got {type(item).__name__})")


CSV_FIELDS = ("id", "title", "text", "html", "url", "lang", "targets")


def _read_csv(fh: Any, name: str) -> Iterator[InputRecord]:
    """CSV with a header row; columns id,title,text (or html),url,lang,targets ("de,fr" or "de;fr")."""
    csv.field_size_limit(MAX_LINE_CHARS)
    reader = csv.DictReader(fh)
    header = reader.fieldnames or []
    if "text" not in header and "html" not in header:
        yield InputRecord(1, name, error="csv header: needs a 'text' or an 'html' column")
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield InputRecord(reader.line_num, name, error=f"invalid CSV: {exc}")
            return
        data: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                data = {}
                yield InputRecord(reader.line_num, name, error="csv: more cells than header columns")
                break
            if key not in CSV_FIELDS or value in (None, ""):
                continue
            data[key] = value.replace(";", ",") if key == "targets" else value
        else:
            yield InputRecord(reader.line_num, name, data=data)
