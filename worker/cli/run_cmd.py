"""`babelwire run`: the real queue path on a machine with nothing installed.

It starts a private Redis from the pip-installed binary (unless BABELWIRE_BROKER_URL is
set), a SQLite store in a temporary directory (unless BABELWIRE_DATABASE_URL is set) and a
`babelwire worker`, enqueues INPUT the way `babelwire enqueue` does, follows the jobs,
prints the results the way `babelwire process` does, and stops everything it started —
also on Ctrl-C or SIGTERM — and removes the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import typer

from pipeline.result import FAILED, Result
from worker.cli.app import EXIT_FAILED, EXIT_OK, app, fail, print_json
from worker.cli.pipeline_cmds import _print_result
from worker.cli.queue_cmds import _progress, _records, _show_progress, open_store, submission_arguments
from worker.config import Settings
from worker.errors import SERVICE_FAULTS, as_unavailable
from worker.submission import SubmissionReport, Submitter, submit_items

RUN_QUEUE = "live"  # someone is waiting for these results
WORKER_STOP_S = (20.0, 5.0)  # warm-shutdown wait: after the jobs finished / when interrupted
POLL_S = 0.2


class _Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind and stop everything (a BaseException, like
    KeyboardInterrupt, so no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopRequest:
    """The signal handler raises _Stopped where the signal lands; a raise can still be lost
    (one landing in code whose exceptions are ignored, such as fork's logging hooks), so
    it also records the signal, and the main loop checks the record at each step."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        raise _Stopped(signum)

    def check(self) -> None:
        if self.signum is not None:
            raise _Stopped(self.signum)


_stop_request = _StopRequest()


def _say(message: str) -> None:
    typer.echo(f"run: {message}", err=True)


@app.command()
def run(
    input: str = typer.Argument(..., help="a .txt/.md page, .json, .jsonl, .csv, a folder, or - for stdin"),
    to: Optional[str] = typer.Option(None, "--to", help="target languages, e.g. de,fr (default: BABELWIRE_TARGETS)"),
    json_out: bool = typer.Option(False, "--json", help="results as JSON lines (see docs/contracts.md)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="give up after S seconds (exit 1)"),
) -> None:
    """Process INPUT through a real queue and worker, starting a private Redis and store for it."""
    settings, targets = submission_arguments(input, to, timeout)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in handled}
    _stop_request.signum = None
    for s in handled:
        signal.signal(s, _stop_request.handle)
    stack = ExitStack()
    interrupted: _Stopped | None = None
    try:
        code = _run(stack, settings, input, targets, json_out, timeout)
    except _Stopped as exc:
        interrupted = exc
        code = 128 + exc.signum
    finally:
        # a second Ctrl-C must not cut the cleanup short (each step has its own time limit)
        for s in handled:
            signal.signal(s, signal.SIG_IGN)
        try:
            stack.close()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    if interrupted is not None:
        _say(f"interrupted ({interrupted}): stopped what it started, removed its files")
    raise typer.Exit(code)


def _run(stack: ExitStack, settings: Settings, input: str, targets: list[str] | None, json_out: bool,
         timeout: float | None) -> int:
    from worker.embedded import EmbeddedRedis, EmbeddedServiceError

    workdir = Path(tempfile.mkdtemp(prefix="babelwire-run-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    updates: dict[str, Any] = {}
    if "broker_url" not in settings.model_fields_set:
        try:
            redis = EmbeddedRedis.start(workdir / "redis")
        except EmbeddedServiceError as exc:
            raise fail(f"embedded Redis: {exc}") from None
        stack.callback(_quietly, redis.stop)
        updates["broker_url"] = redis.url
        _say(f"Redis {redis.version} (embedded, private) on {redis.url}")
    else:
        _say(f"broker {settings.broker_url} (BABELWIRE_BROKER_URL)")
    if "database_url" not in settings.model_fields_set:
        updates["database_url"] = f"sqlite:///{workdir / 'babelwire.db'}"
        _say("store: SQLite in a temporary directory (removed at the end)")
    settings = settings.model_copy(update=updates)

    _stop_request.check()
    store = open_store(settings)  # migrated before the worker starts, so it does not race us
    stack.callback(store.close)
    worker = _start_worker(settings, workdir)
    # registered after the store: the worker stops first, then the store closes
    stack.callback(_stop_worker, worker)

    _stop_request.check()
    report = _enqueue(store, settings, input, targets)
    _stop_request.check()
    for r in report.rejected:
        typer.echo(f"rejected {r.source}:{r.position}: {r.error}", err=True)
    any_failed = bool(report.rejected)
    if not report.job_ids:
        _say("nothing to process")
        return EXIT_FAILED
    _say(f"{len(report.job_ids)} article(s) on the {RUN_QUEUE!r} queue; worker pid {worker.proc.pid}")

    pending = _follow(store, list(dict.fromkeys(report.job_ids)), worker, timeout, _show_progress(json_out))
    for job_id in dict.fromkeys(report.job_ids):
        result = store.result(job_id)
        if result is None or job_id in pending:
            any_failed = True
            continue
        any_failed |= result.status == FAILED
        _print(result, json_out)
    sys.stdout.flush()
    if pending:
        typer.echo(f"error: {len(pending)} article(s) unfinished after {timeout} s", err=True)
    worker.finished = True
    _stop_request.check()
    return EXIT_FAILED if any_failed else EXIT_OK


def _print(result: Result, json_out: bool) -> None:
    if json_out:
        print_json(result.to_dict())
    else:
        _print_result(result)


def _quietly(stop: Any) -> None:
    try:
        stop()
    except Exception as exc:  # cleanup goes on: the next service still gets stopped
        _say(f"while stopping: {type(exc).__name__}: {exc}")


# --- the worker -------------------------------------------------------------------------------


class _Worker:
    def __init__(self, proc: Any, log_path: Path):
        self.proc = proc
        self.log_path = log_path
        self.finished = False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _start_worker(settings: Settings, workdir: Path) -> _Worker:
    """`babelwire worker` with one solo process (the smallest that runs the real task path)."""
    from worker.embedded import spawn

    env = dict(os.environ, BABELWIRE_BROKER_URL=settings.broker_url, BABELWIRE_DATABASE_URL=settings.database_url,
               PYTHONUNBUFFERED="1")
    log_path = workdir / "worker.log"
    proc = spawn(
        [sys.executable, "-c", "from worker.cli import main; main()", "worker", "--pool", "solo",
         "-n", f"run-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        log_path, env=env,
    )
    return _Worker(proc, log_path)


def _stop_worker(worker: _Worker) -> None:
    from worker.embedded import stop_process_group

    # Interrupted: SIGQUIT (Celery's cold shutdown, the jobs' store is thrown away anyway).
    sig, wait = (signal.SIGTERM, WORKER_STOP_S[0]) if worker.finished else (signal.SIGQUIT, WORKER_STOP_S[1])
    stop_process_group(worker.proc, sig, wait)


# --- enqueue and follow -----------------------------------------------------------------------


def _enqueue(store: Any, settings: Settings, input: str, targets: list[str] | None) -> SubmissionReport:
    """Submit INPUT through the submission service, as `babelwire enqueue` does."""
    from worker.celery_app import create_app

    try:
        submitter = Submitter(store, create_app(settings), RUN_QUEUE)
    except Exception as exc:
        raise fail(f"broker {settings.broker_url!r}: {exc}") from None
    report = SubmissionReport()
    try:
        with submitter:
            submit_items(submitter, _records(input, targets), settings.limits, report)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    except SERVICE_FAULTS as exc:
        typer.echo(f"error: {as_unavailable(exc)}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    return report


def _follow(store: Any, job_ids: list[str], worker: _Worker, timeout: float | None, show: bool) -> set[str]:
    """Poll the store until every job is finished (or `timeout`); returns the unfinished ones.
    A worker that exits is an error with its log."""
    from worker.store import FINISHED

    pending = set(job_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    last_said = -1
    with _progress(show) as progress:
        task = progress.add_task("processing", total=len(job_ids)) if progress else None
        while pending:
            _stop_request.check()
            statuses = store.statuses(sorted(pending))
            pending = {j for j in pending if statuses.get(j) not in FINISHED}
            done = len(job_ids) - len(pending)
            if progress:
                progress.update(task, completed=done)
            elif done != last_said:
                _say(f"{done}/{len(job_ids)} finished")
                last_said = done
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            if worker.proc.poll() is not None:
                typer.echo(f"error: the worker exited with {worker.proc.returncode}:\n{worker.log_tail()}", err=True)
                raise typer.Exit(EXIT_FAILED)
            time.sleep(POLL_S)
    return pending
