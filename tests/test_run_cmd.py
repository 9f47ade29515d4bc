"""`babelwire run`: the real queue path (a private Redis, a store, a worker) with nothing
installed, and nothing left behind — after a normal end, Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT, babelwire_command, run_cli
from tests.faults_support import toy_articles, wait_for, write_jsonl

ARTICLE = ROOT / "examples" / "article.txt"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No BABELWIRE_* from outside (so no broker, no database), an empty model store, and a
    TMPDIR of the test's own to see what is left in it."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    (tmp_path / "models-empty").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABELWIRE_")}
    env.update(TMPDIR=str(tmp_path / "tmp"), BABELWIRE_MODELS_DIR=str(tmp_path / "models-empty"),
               BABELWIRE_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if any(text in part for part in proc.info["cmdline"] or []) or \
                    text in (proc.info["environ"] or {}).get("TMPDIR", ""):
                found.append(proc)
        except psutil.Error:
            continue
    return [p for p in found if p.pid != os.getpid()]


def test_the_readme_command_goes_through_a_queue_and_a_worker_with_no_models(tmp_path: Path) -> None:
    result = run_cli(["run", str(ARTICLE), "--to", "de,fr"], _env(tmp_path), timeout=240)
    assert result.returncode == 0, result.stderr
    assert "(embedded, private)" in result.stderr and "worker pid" in result.stderr
    assert "1/1 finished" in result.stderr
    # the result as `process` prints it: an extractive summary and the command for each model
    assert "(summary: extractive)" in result.stdout
    assert "summary: Dockworkers at the port of Kellerhaven" in result.stdout
    assert "babelwire models pull opus-mt-en-de" in result.stdout
    assert "babelwire models pull opus-mt-en-fr" in result.stdout
    assert _leftovers(tmp_path) == []


def test_run_prints_what_process_prints_for_the_same_input(tmp_path: Path, toy_models_dir: Path) -> None:
    articles = write_jsonl(tmp_path / "in.jsonl", toy_articles(3, seed=16))
    env = _env(tmp_path, BABELWIRE_MODELS_DIR=str(toy_models_dir))
    ran = run_cli(["run", str(articles), "--to", "qaa,qab", "--json"], env, timeout=240)
    processed = run_cli(["process", str(articles), "--to", "qaa,qab", "--json"], env, timeout=240)
    assert ran.returncode == 0 and processed.returncode == 0, ran.stderr + processed.stderr

    def comparable(stdout: str) -> list[dict[str, Any]]:
        keys = ("article_id", "external_id", "status", "source_lang", "title", "summary", "models", "errors")
        return [{k: row.get(k) for k in keys} for row in map(json.loads, stdout.splitlines())]

    got = comparable(ran.stdout)
    assert [r["external_id"] for r in got] == ["f16-0", "f16-1", "f16-2"]
    assert all(set(r["summary"]) >= {"en", "qaa", "qab"} for r in got)
    assert got == comparable(processed.stdout)
    assert _leftovers(tmp_path) == []


def test_a_broker_and_database_of_the_environment_are_used_instead(tmp_path: Path, redis_url: str,
                                                                   database_url: str) -> None:
    import redis

    from worker.store import Store

    env = _env(tmp_path, BABELWIRE_BROKER_URL=redis_url, BABELWIRE_DATABASE_URL=database_url)
    result = run_cli(["run", str(ARTICLE), "--to", "de", "--json"], env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "(embedded, private)" not in result.stderr and f"broker {redis_url}" in result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    store = Store(database_url)
    try:
        kept = store.result(job_id)
        assert kept is not None and kept.status == "partial"
    finally:
        store.close()
    # the run's messages went through this Redis (kombu's queue bindings are left there)
    assert redis.Redis.from_url(redis_url).exists("_kombu.binding.live")


def test_a_bad_input_fails_before_anything_starts(tmp_path: Path) -> None:
    result = run_cli(["run", str(tmp_path / "missing.jsonl")], _env(tmp_path))
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    result = run_cli(["run", str(ARTICLE), "--to", "xx-nope"], _env(tmp_path))
    assert result.returncode == 2 and "--to" in result.stderr
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("when", ["while processing", "while starting"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_leaves_no_process_and_no_directory(tmp_path: Path, toy_models_dir: Path,
                                                                sig: signal.Signals, when: str) -> None:
    articles = write_jsonl(tmp_path / "in.jsonl", toy_articles(200, seed=61, sentences=10))
    env = _env(tmp_path, BABELWIRE_MODELS_DIR=str(toy_models_dir))
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        # its own process group, as a shell gives a foreground job: Ctrl-C reaches the group
        proc = subprocess.Popen([*babelwire_command(), "run", str(articles), "--to", "qaa,qab"], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, start_new_session=True)
    try:
        marker = "finished" if when == "while processing" else "(embedded, private)"

        def reached() -> bool:
            text = stderr_path.read_text()
            if when == "while processing":
                return any(line.startswith("run: ") and line.endswith(" finished") and not line.startswith("run: 0/")
                           for line in text.splitlines())
            return marker in text

        wait_for(reached, 180, f"the run to get {when}", context=stderr_path.read_text)
        started = psutil.Process(proc.pid).children(recursive=True)
        if when == "while processing":
            assert len(started) >= 2  # the Redis server and the worker
        os.killpg(proc.pid, sig)  # what the terminal does on Ctrl-C
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = stderr_path.read_text()
    assert proc.returncode == 128 + sig, text
    assert "interrupted" in text and "stopped what it started" in text, text
    time.sleep(0.2)
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert _processes_mentioning(str(tmp_path / "tmp")) == []
    assert _leftovers(tmp_path) == []


def test_a_stop_signal_whose_exception_was_swallowed_still_stops_the_run() -> None:
    """A signal can land in code whose exceptions are ignored (fork's logging hooks did, in
    the SIGTERM-while-starting case): the request is kept and the next check raises it."""
    from worker.cli.run_cmd import _Stopped, _StopRequest

    request = _StopRequest()
    request.check()  # nothing asked: nothing happens
    try:
        request.handle(signal.SIGTERM, None)
    except BaseException:  # what "Exception ignored in ..." amounts to
        pass
    with pytest.raises(_Stopped) as stopped:
        request.check()
    assert stopped.value.signum == signal.SIGTERM and str(stopped.value) == "SIGTERM"
