"""The dependency direction is a contract (pyproject's [tool.importlinter]): worker → tasks →
pipeline and worker → models → pipeline; pipeline and models import no server library."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract can fail: pipeline importing sqlalchemy is reported as broken."""
    config = tmp_path / "contracts.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    probe = ROOT / "pipeline" / "_layering_probe.py"
    probe.write_text("import sqlalchemy  # noqa: F401\nimport worker.config  # noqa: F401\n")
    try:
        result = _lint_imports("--config", str(config))
    finally:
        probe.unlink()
    assert result.returncode != 0
    assert "pipeline._layering_probe -> sqlalchemy" in result.stdout
    assert "BROKEN" in result.stdout


def test_ci_runs_the_readme_test_command_with_the_contracts() -> None:
    """.ci/run runs README command 2 verbatim, and that command checks the contracts."""
    readme = (ROOT / "README.md").read_text().splitlines()
    command = next(line for line in readme if "python -m pytest" in line and line.startswith("python3.11"))
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == command
    assert "lint-imports && python -m pytest" in command
