"""The project stands alone: its contract is in docs/, and no help text, docstring or page
sends a reader to a document the repository does not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_DOCUMENT = re.compile(r"SPEC(\.md| ?§)|shared/SPEC|\.\./shared")


def test_no_tracked_text_points_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".html", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini", ""}:
            continue
        if not path.is_file() or name == "tests/test_standalone_docs.py":
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE_DOCUMENT.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)


def test_the_docs_carry_the_contract() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    for page in ("architecture.md", "contracts.md", "reliability.md", "performance.md"):
        assert page in index and (ROOT / "docs" / page).is_file()
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    for heading in ("## Article", "## Result", "## Celery task", "## CLI", "## HTTP API", "## Settings", "## Model store"):
        assert heading in contracts


def test_every_docs_page_named_exists() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    missing = set()
    for name in files:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".html"} and path.is_file():
            for page in re.findall(r"docs/[\w-]+\.md", path.read_text(errors="replace")):
                if not (ROOT / page).is_file():
                    missing.add(f"{name}: {page}")
    assert not missing, sorted(missing)
