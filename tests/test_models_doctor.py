"""`babelwire doctor`: broker, database, model store, targets, summarizer; the fix for each gap."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.conftest import REDIS_HOST
from tests.models_cli_helpers import run_babelwire

REDIS_DB11 = f"redis://{REDIS_HOST}/11"  # this suite's Redis DB (the session's Redis); doctor only pings it


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, models_dir: Path, targets: str, **extra: str) -> dict[str, str]:
    return {
        "BABELWIRE_BROKER_URL": REDIS_DB11,
        "BABELWIRE_DATABASE_URL": f"sqlite:///{tmp_path / 'doctor.db'}",
        "BABELWIRE_MODELS_DIR": str(models_dir),
        "BABELWIRE_TARGETS": targets,
        **extra,
    }


def test_doctor_on_an_empty_store_names_what_to_pull(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    env = _env(tmp_path, tmp_path / "models", "de,fr,pt")
    result = run_babelwire(["doctor"], env)
    assert result.exit_code == 1
    for fix in ("babelwire models pull opus-mt-en-de", "babelwire models pull opus-mt-en-fr",
                "babelwire models pull opus-mt-en-ROMANCE", "babelwire models pull distilbart-cnn-12-6"):
        assert f"fix: {fix}" in result.stdout, fix
    report = json.loads(run_babelwire(["doctor", "--json"], env).stdout)
    assert report["ok"] is False
    assert report["routes"] == {"en": {"de": None, "fr": None, "pt": None}}
    assert report["summarizers"] == {"en": None}
    assert report["missing"] == [
        "babelwire models pull opus-mt-en-de", "babelwire models pull opus-mt-en-fr",
        "babelwire models pull opus-mt-en-ROMANCE", "babelwire models pull distilbart-cnn-12-6"]
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["broker"]["ok"] and checks["database"]["ok"] and checks["store"]["ok"]


def test_doctor_on_a_complete_store_says_all_targets_are_served(tmp_path: Path, toy_models_dir: Path) -> None:
    env = _env(tmp_path, toy_models_dir, "qaa,qab")
    result = run_babelwire(["doctor"], env)
    assert result.exit_code == 0, result.output
    assert "all targets (qaa, qab) are served from en" in result.stdout
    report = json.loads(run_babelwire(["doctor", "--json"], env).stdout)
    assert report["ok"] is True and report["missing"] == []
    assert report["routes"] == {"en": {"qaa": "toy-en-qaa", "qab": "toy-en-qab"}}
    assert report["summarizers"] == {"en": "toy-lead-en"}
    # from another source language the same store routes through English
    other = json.loads(run_babelwire(["doctor", "--json", "--source", "qaa"], {**env, "BABELWIRE_TARGETS": "qab"}).stdout)
    assert other["routes"] == {"qaa": {"qab": "toy-qaa-en+toy-en-qab"}}


def test_doctor_reports_an_unreachable_broker_and_database(tmp_path: Path, toy_models_dir: Path) -> None:
    port = _closed_port()
    env = _env(
        tmp_path, toy_models_dir, "qaa",
        BABELWIRE_BROKER_URL=f"redis://:secret@127.0.0.1:{port}/0",
        BABELWIRE_DATABASE_URL=f"postgresql+psycopg://postgres:secret@127.0.0.1:{port}/nothing",
    )
    result = run_babelwire(["doctor", "--json"], env)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    checks = {c["check"]: c for c in report["checks"]}
    assert not checks["broker"]["ok"] and "BABELWIRE_BROKER_URL" in checks["broker"]["fix"]
    assert not checks["database"]["ok"] and "BABELWIRE_DATABASE_URL" in checks["database"]["fix"]
    assert "secret" not in result.stdout  # passwords are never printed
    assert checks["en→qaa"]["ok"]


def test_doctor_reports_a_missing_store_and_broken_models(tmp_path: Path) -> None:
    result = run_babelwire(["doctor", "--json"], _env(tmp_path, tmp_path / "nowhere", "de"))
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert not checks["store"]["ok"] and "babelwire models pull --defaults" in checks["store"]["fix"]

    broken = tmp_path / "models" / "half-copied"
    broken.mkdir(parents=True)
    (broken / "babelwire.json").write_text("{not json")
    result = run_babelwire(["doctor", "--json"], _env(tmp_path, tmp_path / "models", "de"))
    report = json.loads(result.stdout)
    problems = [c for c in report["checks"] if c["check"] == "store" and not c["ok"]]
    assert len(problems) == 1 and "half-copied" in problems[0]["detail"]
    assert "babelwire models remove half-copied" in problems[0]["fix"]


def test_doctor_refuses_unknown_source_codes(tmp_path: Path) -> None:
    result = run_babelwire(["doctor", "--source", "klingon"], _env(tmp_path, tmp_path, "de"))
    assert result.exit_code == 2 and "unknown language code" in result.stderr


def test_list_available_shows_licenses_and_defaults(tmp_path: Path) -> None:
    args = ["models", "list", "--available", "--json"]
    rows = json.loads(run_babelwire(args, {"BABELWIRE_MODELS_DIR": str(tmp_path)}).stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["nllb-200-distilled-600M"]["commercial_use"] is False
    assert by_name["opus-mt-en-de"]["default"] is True and by_name["opus-mt-en-de"]["installed"] is False
    text = run_babelwire(args[:-1], {"BABELWIRE_MODELS_DIR": str(tmp_path)}).stdout
    assert "NON-COMMERCIAL" in text.split("nllb-200-distilled-600M", 1)[1].splitlines()[0]
