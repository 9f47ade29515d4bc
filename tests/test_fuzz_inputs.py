"""Fuzzing the input readers (`worker.inputs.read_inputs`) on generated JSONL, CSV and JSON
files, then `babelwire enqueue` on them: every line is one record, either an article object
(equal to what was written) or an error with its line; every record then validates or is
rejected with a reason; the CLI never crashes and its report accounts for every line."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.article import validate_article
from pipeline.exceptions import ArticleError
from tests.fuzz_strategies import LIMITS, article_like, articles, json_values, texts
from worker.inputs import CSV_FIELDS, read_inputs

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# one JSONL line: a JSON value (mostly article-like), or text that may or may not be JSON
jsonl_lines = (
    article_like.map(lambda v: json.dumps(v, allow_nan=True))
    | texts.filter(lambda t: "\n" not in t and "\r" not in t)
    | st.sampled_from(["", "   ", "{", '{"text": ', "[]", "null", '{"text": "x"} trailing', "\ufeff{}"])
)


def temp_file(suffix: str, content: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    with handle:
        handle.write(content)
    return Path(handle.name)


@pytest.fixture
def cleanup() -> Iterator[list[Path]]:
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


def records(path: Path) -> list[Any]:
    return list(read_inputs(str(path)))


def expected_json(line: str) -> Any:
    """What a reader must make of one line: the decoded value, or the JSONDecodeError."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return exc


def validated_or_rejected(data: dict[str, Any]) -> None:
    try:
        validate_article(data, LIMITS)
    except ArticleError as exc:
        assert exc.field and exc.message


BOM = "\ufeff".encode()  # what Excel and many Windows tools put at the start of a UTF-8 file


@FUZZ
@given(st.lists(jsonl_lines, max_size=12), st.booleans())
def test_jsonl_every_line_is_one_record_an_article_or_an_error_with_its_line(lines: list[str], bom: bool) -> None:
    content = BOM * bom + "\n".join(lines).encode("utf-8", "surrogatepass")
    path = temp_file(".jsonl", content)
    try:
        got = records(path)
    finally:
        path.unlink()
    # what the file says: UTF-8 where a lone surrogate reads back as U+FFFD (one per byte),
    # and a byte-order mark at the very start is not part of the first line
    written = content.decode("utf-8", "replace").removeprefix("\ufeff").split("\n") if lines else []
    expected = [(n, line) for n, line in enumerate(written, 1) if line.strip()]
    assert [r.line for r in got] == [n for n, _ in expected]
    for record, (_, line) in zip(got, expected):
        value = expected_json(line)
        assert (record.data is None) != (record.error is None)
        if isinstance(value, dict):
            assert record.data == value or json.dumps(record.data) == json.dumps(value)  # NaN != NaN
            validated_or_rejected(record.data)
        else:
            assert record.error and record.data is None


csv_cells = texts | st.sampled_from(["", "de;fr", "de,fr", '"quoted"', "line\nbreak", "a,b", " "])
csv_rows = st.lists(
    st.fixed_dictionaries({"text": csv_cells}, optional={f: csv_cells for f in CSV_FIELDS if f != "text"}),
    max_size=8,
)


@FUZZ
@given(csv_rows, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_csv_rows_read_back_as_written_and_each_validates_or_is_rejected(rows: list[dict[str, str]],
                                                                        newline: str, bom: bool) -> None:
    rows = [{k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in row.items()}
            for row in rows]
    buffer = io.StringIO()
    # minimal quoting leaves a lone "\r" bare unless "\r" ends lines: then quote everything
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_ALL
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_FIELDS), lineterminator=newline, quoting=quoting)
    writer.writeheader()
    writer.writerows(rows)
    path = temp_file(".csv", BOM * bom + buffer.getvalue().encode("utf-8"))
    try:
        got = records(path)
    finally:
        path.unlink()
    assert len(got) == len(rows), got
    for record, row in zip(got, rows):
        assert record.error is None, record
        wanted = {k: (v.replace(";", ",") if k == "targets" else v) for k, v in row.items() if v != ""}
        assert record.data == wanted
        validated_or_rejected(record.data)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".jsonl", ".csv", ".json", ".txt"]))
def test_any_bytes_in_any_format_read_as_records_never_an_exception(content: bytes, suffix: str) -> None:
    path = temp_file(suffix, content)
    try:
        got = records(path)
    finally:
        path.unlink()
    for record in got:
        assert (record.data is None) != (record.error is None) and record.line >= 1
        if record.data is not None:
            validated_or_rejected(record.data)


@FUZZ
@given(json_values, st.booleans())
def test_a_json_file_is_a_list_of_articles_or_one_article(value: Any, bom: bool) -> None:
    path = temp_file(".json", BOM * bom + json.dumps(value).encode("utf-8", "surrogatepass"))
    try:
        got = records(path)
    finally:
        path.unlink()
    items = value if isinstance(value, list) else [value]
    assert len(got) == len(items)
    for record, item in zip(got, items):
        assert (record.data is not None) == isinstance(item, dict)


# --- the CLI on generated files -----------------------------------------------------------------


@pytest.fixture
def enqueue_env(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from worker.config import get_settings

    monkeypatch.setenv("BABELWIRE_BROKER_URL", redis_url)
    monkeypatch.setenv("BABELWIRE_DATABASE_URL", f"sqlite:///{tmp_path / 'fuzz-cli.db'}")
    monkeypatch.setenv("BABELWIRE_TARGETS", "de")
    monkeypatch.setenv("BABELWIRE_MAX_TEXT_CHARS", str(LIMITS.max_text_chars))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(articles.map(json.dumps) | jsonl_lines, min_size=1, max_size=10))
def test_enqueue_never_crashes_and_accounts_for_every_line(enqueue_env: None, lines: list[str]) -> None:
    from worker.cli import app

    path = temp_file(".jsonl", "\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        result = CliRunner().invoke(app, ["enqueue", str(path), "--json"])
        expected_records = len(records(path))
    finally:
        path.unlink()
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["accepted"] + report["duplicates"] + len(report["rejected"]) == expected_records
    assert result.exit_code == (1 if report["rejected"] else 0)
    assert all(r["error"] and r["line"] >= 1 for r in report["rejected"])
    assert len(report["job_ids"]) == report["accepted"] + report["duplicates"]
