"""Hostile input to the CLI (issue 10 items 7, 8, 11, 12; issue 12 item 4; issue 13 item 5):
every case is a clear error and an exit code, never a traceback, and a bad line costs only
itself. `babelwire` runs as a subprocess against the real Redis and store."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.store import Store

DEEP = "[" * 100_000 + "]" * 100_000


def bulk_length(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen("bulk"))
    finally:
        client.close()


def assert_clear(result: Any, code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr[-2000:])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_enqueue_reports_bad_lines_with_line_and_field_and_keeps_the_rest(
    tmp_path: Path, service_env: dict[str, str], cli: Any, redis_url: str
) -> None:
    """Issue 10 item 8 and issue 13 item 5: a deeply nested line, and invalid articles, are
    reported by line and field; the lines before and after them are enqueued."""
    lines = [json.dumps({"id": f"l{i}", "text": f"Line {i} is about the port. Ships came in."}) for i in range(10)]
    lines[1] = DEEP
    lines[4] = json.dumps({"id": "l4", "text": "Fine.", "targets": ["zz"]})
    lines[7] = json.dumps({"id": "l7", "title": "no text"})
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = cli(["enqueue", str(path), "--json"], service_env)
    assert_clear(result, 1)
    report = json.loads(result.stdout)
    assert report["accepted"] == 7 and len(report["job_ids"]) == 7
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(2, "article"), (5, "targets"), (8, "text")]
    assert "nested deeper than" in report["rejected"][0]["error"]
    assert bulk_length(redis_url) == 7

    plain = cli(["enqueue", str(path)], service_env)  # the same again: duplicates, lines named on stderr
    assert_clear(plain, 1, "rejected mixed.jsonl:2: article: invalid JSON", "rejected mixed.jsonl:5: targets:")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_deep_json_files_are_clear_errors_for_process_and_models_import(
    tmp_path: Path, service_env: dict[str, str], cli: Any
) -> None:
    """Issue 10 item 8: `process` of a nested JSON file, and `models import` of a package
    whose metadata is nested, give a message, not a RecursionError."""
    nested = tmp_path / "nested.json"
    nested.write_text(DEEP)
    processed = cli(["process", str(nested)], service_env)
    assert_clear(processed, 1, "nested deeper than")
    package = tmp_path / "deep.argosmodel"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("pkg/metadata.json", DEEP)
        archive.writestr("pkg/model/model.bin", b"x")
        archive.writestr("pkg/sentencepiece.model", b"x")
    imported = cli(["models", "import", str(package)], service_env)
    assert_clear(imported, 2, "metadata.json", "nested deeper than")


def _understate(package: Path, member: str, claimed: int) -> None:
    """Rewrite the sizes that the zip headers give for `member` (stored, not compressed)."""
    data = bytearray(package.read_bytes())
    name = member.encode()
    for signature, sizes_at in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            start = at + 4
            name_len_at = 26 if signature == b"PK\x03\x04" else 28
            name_len = struct.unpack_from("<H", data, at + name_len_at)[0]
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(data[name_at:name_at + name_len]) == name:
                struct.pack_into("<II", data, at + sizes_at, claimed, claimed)
    package.write_bytes(bytes(data))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_zip_that_understates_a_member_is_a_clear_error(tmp_path: Path, service_env: dict[str, str], cli: Any) -> None:
    """Issue 10 item 12."""
    package = tmp_path / "lies.argosmodel"
    with zipfile.ZipFile(package, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("pkg/metadata.json", json.dumps({"from_code": "en", "to_code": "de"}))
        archive.writestr("pkg/model/model.bin", b"m" * 4096)
        archive.writestr("pkg/sentencepiece.model", b"s" * 64)
    _understate(package, "pkg/model/model.bin", 16)
    result = cli(["models", "import", str(package)], {**service_env, "BABELWIRE_MODELS_DIR": str(tmp_path / "store")})
    assert_clear(result, 2, "pkg/model/model.bin", "damaged")
    assert not (tmp_path / "store" / "argos-en-de").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_export_refuses_outputs_it_would_replace_and_bad_arguments(
    tmp_path: Path, service_env: dict[str, str], cli: Any
) -> None:
    """Issue 10 items 7 and 12: a symlink, FIFO, device or folder is never replaced by a
    regular file; a missing folder and an absurd --since are errors; exit 2 each."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for path, kind in ((link, "a symbolic link"), (fifo, "a FIFO"), (Path("/dev/null"), "a device"),
                       (tmp_path, "a folder")):
        result = cli(["export", "-o", str(path)], service_env, timeout=60)
        assert_clear(result, 2, f"is {kind}")
    assert link.is_symlink() and target.read_text() == "keep me"
    assert fifo.exists() and not fifo.is_file()
    missing = cli(["export", "-o", "/nonexistent/d/x"], service_env)
    assert_clear(missing, 2, "no such folder", "/nonexistent/d")
    since = cli(["export", "--since", "99999999999999d"], service_env)
    assert_clear(since, 2, "--since")
    fine = cli(["export", "-o", str(tmp_path / "out.jsonl")], service_env)
    assert_clear(fine, 0)
    assert (tmp_path / "out.jsonl").read_text() == ""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_enqueue_of_a_folder_never_follows_a_symlink_out_of_it(
    tmp_path: Path, service_env: dict[str, str], cli: Any
) -> None:
    """Issue 10 item 11."""
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash. The secret is here.")
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.txt").write_text("Headline\n\nThe harbour reopened today. Ships came in.")
    (folder / "b.txt").symlink_to(outside)
    (folder / "c.txt").symlink_to(folder / "a.txt")  # even inside the folder: links are not read
    result = cli(["enqueue", str(folder), "--json"], service_env)
    assert_clear(result, 1)
    report = json.loads(result.stdout)
    assert report["accepted"] == 1
    assert {r["source"] for r in report["rejected"]} == {"b.txt", "c.txt"}
    assert all("not a regular file" in r["error"] for r in report["rejected"])
    store = Store(service_env["BABELWIRE_DATABASE_URL"])
    try:
        assert store.row_counts()["articles"] == 1
        (found,) = store.recent_jobs()
        assert "secret" not in (found[1].title or "")
    finally:
        store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("command", [["status"], ["export"], ["enqueue", "-"], ["api", "--port", "0"], ["worker"],
                                     ["models", "list"], ["process", "-"], ["doctor"]])
def test_a_bad_setting_is_exit_2_naming_the_variable(service_env: dict[str, str], cli: Any, command: list[str]) -> None:
    """Issue 12 item 4: every command, before doing anything."""
    result = cli(command, {**service_env, "BABELWIRE_API_MAX_ARTICLES": "many"}, input="", timeout=60)
    assert_clear(result, 2, "BABELWIRE_API_MAX_ARTICLES")
