"""`babelwire enqueue / status / export / worker`: the service side of the CLI (docs/contracts.md).

`enqueue` streams its input (a 1 GB JSONL is never in memory) through the submission service
(`worker.submission`, shared with the API): records are validated and submitted in batches,
each batch's job rows and messages in one step, a resubmitted article reported as a duplicate.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from pipeline.result import DONE, FAILED, PARTIAL
from worker.cli.app import EXIT_FAILED, EXIT_OK, app, fail, load_settings, print_json
from worker.cli.pipeline_cmds import parse_targets
from worker.config import Settings
from worker.errors import SERVICE_FAULTS, as_unavailable
from worker.inputs import read_inputs
from worker.submission import Item, Rejection, SubmissionReport, Submitter, submit_items
WAIT_POLL_S = (0.2, 2.0)  # --wait polls the store, backing off from the first to the second


def _settings() -> Settings:
    return load_settings()


def open_store(settings: Settings) -> Any:
    """The store, migrated to the current schema (exit 2 if the database is unusable)."""
    from worker.store import Store

    try:
        store = Store(settings.database_url)
        store.migrate()
    except Exception as exc:
        raise fail(f"database {settings.database_url!r}: {type(exc).__name__}: {exc}") from None
    return store


def _progress(enabled: bool) -> Any:
    """A rich progress bar on stderr, or a do-nothing stand-in (not a TTY, or --json)."""
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True), transient=False,
    )


def _show_progress(json_out: bool) -> bool:
    return not json_out and sys.stderr.isatty()


# --- enqueue ---------------------------------------------------------------------------------


def enqueue_report(report: SubmissionReport) -> dict[str, Any]:
    return {
        "accepted": report.accepted, "duplicates": report.duplicates,
        "rejected": [{"line": r.position, "source": r.source, "field": r.field, "error": r.error}
                     for r in report.rejected],
        "job_ids": report.job_ids,
    }


def submission_arguments(input: str, to: str | None, timeout: float | None) -> tuple[Settings, list[str] | None]:
    """The checks every submitting command makes before it connects to anything: settings,
    target languages, an input that exists and a positive timeout (each a usage error, exit 2)."""
    if timeout is not None and timeout <= 0:
        raise fail(f"--timeout: must be positive (got {timeout})")
    settings = _settings()
    targets = parse_targets(to)
    if input != "-" and not Path(input).exists():
        raise fail(f"no such file or folder: {input}")
    return settings, targets


@app.command()
def enqueue(
    input: str = typer.Argument(..., help="A .jsonl, .json, .csv file, a folder of .txt/.md pages, or - for stdin"),
    to: Optional[str] = typer.Option(None, "--to", help="Target languages, e.g. de,fr (default: each article's, else BABELWIRE_TARGETS)"),
    queue: str = typer.Option("bulk", "--queue", help="live (news-site latency) or bulk (batches)"),
    wait: bool = typer.Option(False, "--wait", help="Follow the jobs to the end; exit 1 if any failed"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="With --wait: give up after S seconds (exit 1)"),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report (docs/contracts.md, CLI)"),
) -> None:
    """Validate articles and put them on the queue; report accepted / duplicate / rejected.

    An invalid line (bad JSON, a field over a limit) is reported with its line number and field;
    the lines before and after it are enqueued."""
    from worker.celery_app import create_app
    from worker.queues import QUEUES

    if queue not in QUEUES:
        raise fail(f"--queue: must be one of {', '.join(QUEUES)} (got {queue!r})")
    settings, targets = submission_arguments(input, to, timeout)
    store = open_store(settings)
    try:
        celery_app = create_app(settings)
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from None
    # job ids only when printed or followed: otherwise memory stays flat on any input size
    report = SubmissionReport(keep_items=False, keep_job_ids=json_out or wait)
    show = _show_progress(json_out)
    try:
        submitter = Submitter(store, celery_app, queue)
    except Exception as exc:
        raise fail(f"broker {settings.broker_url!r}: {exc}") from None
    try:
        with submitter, _progress(show) as progress:
            task = progress.add_task(f"enqueue → {queue}", total=None) if progress else None
            submit_items(submitter, _records(input, targets), settings.limits, report,
                         on_batch=(lambda n: progress.update(task, advance=n)) if progress else None)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    except SERVICE_FAULTS as exc:
        # Rows whose messages did not go out were rolled back with their batch: enqueuing
        # the same input again finishes the job (earlier batches are duplicates).
        typer.echo(
            f"error: {as_unavailable(exc)}\n"
            f"{report.accepted} accepted before the failure; enqueue the same input again to finish",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED) from None
    if not json_out:
        for r in report.rejected:
            typer.echo(f"rejected {r.source}:{r.position}: {r.error}", err=True)

    out = enqueue_report(report)
    finished: dict[str, int] | None = None
    unfinished = 0
    if wait and report.job_ids:
        finished, unfinished, failures = _wait(store, report.job_ids, timeout, show)
        out.update(finished)
        if unfinished:
            out["unfinished"] = unfinished
    if json_out:
        print_json(out)
    else:
        msg = f"accepted {report.accepted}, duplicates {report.duplicates}, rejected {len(report.rejected)}"
        if report.resent:
            msg += f" ({report.resent} duplicates re-sent: their messages had never gone out)"
        typer.echo(msg)
        if finished is not None:
            typer.echo(f"done {finished[DONE]}, partial {finished[PARTIAL]}, failed {finished[FAILED]}"
                       + (f", unfinished {unfinished} (timed out)" if unfinished else ""))
            for job_id, error in failures[:20]:
                typer.echo(f"failed {job_id}: {error}", err=True)
    store.close()
    bad = report.rejected or (finished is not None and (finished[FAILED] or unfinished))
    raise typer.Exit(EXIT_FAILED if bad else EXIT_OK)


def _records(path: str, targets: list[str] | None) -> Iterator[Item | Rejection]:
    """The input's records as items; one that is no article at all comes as a Rejection."""
    for record in read_inputs(path):
        if record.error is not None:
            yield Rejection(record.line, "article", record.error, record.source)
            continue
        data = dict(record.data or {})
        if targets is not None:
            data["targets"] = targets
        yield Item(record.line, data, record.source)


def _wait(store: Any, job_ids: list[str], timeout: float | None, show: bool) -> tuple[dict[str, int], int, list[tuple[str, str]]]:
    """Poll the store until every job is finished or `timeout` passes."""
    from worker.store import FINISHED

    pending = list(dict.fromkeys(job_ids))
    total = len(pending)
    counts = {DONE: 0, PARTIAL: 0, FAILED: 0}
    failed_ids: list[str] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = WAIT_POLL_S[0]
    with _progress(show) as progress:
        task = progress.add_task("processing", total=total) if progress else None
        while pending:
            statuses = store.statuses(pending)
            still: list[str] = []
            for job_id in pending:
                status = statuses.get(job_id)
                if status in FINISHED:
                    counts[status] += 1
                    if status == FAILED:
                        failed_ids.append(job_id)
                else:
                    still.append(job_id)
            if progress:
                progress.update(task, completed=total - len(still))
            pending = still
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(WAIT_POLL_S[1], delay * 1.5)
    failures = []
    for job_id in failed_ids[:20]:
        result = store.result(job_id)
        failures.append((job_id, "; ".join(f"{k}: {v}" for k, v in (result.errors if result else {}).items())))
    return counts, len(pending), failures


# --- status ----------------------------------------------------------------------------------


@app.command()
def status(
    job_id: Optional[str] = typer.Argument(None, help="A job id (default: counts of all jobs by status)"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (docs/contracts.md)"),
) -> None:
    """One job's result, or the number of jobs in each status."""
    settings = _settings()
    store = open_store(settings)
    try:
        if job_id is None:
            counts = store.counts()
            if json_out:
                print_json({"counts": counts})
            else:
                typer.echo("  ".join(f"{name} {n}" for name, n in counts.items()))
            raise typer.Exit(EXIT_OK)
        result = store.result(job_id)
        if result is None:
            raise fail(f"no job {job_id!r}", EXIT_FAILED)
        if json_out:
            print_json(result.to_dict())
        else:
            typer.echo(f"job {result.job_id}: {result.status}  (article {result.article_id}"
                       + (f", id {result.external_id}" if result.external_id else "") + ")")
            if result.source_lang:
                typer.echo(f"source language: {result.source_lang} ({result.source_lang_confidence})")
            for lang, text in result.summary.items():
                typer.echo(f"[{lang}] {result.title.get(lang, '')}\n     {text}")
            for lang, error in result.errors.items():
                typer.echo(f"error {lang}: {error}")
        raise typer.Exit(EXIT_OK)
    finally:
        store.close()


# --- export ----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 date or datetime (UTC unless it has an offset), or an age: 30m, 12h, 7d."""
    now = now or datetime.now(timezone.utc)
    match = _RELATIVE.match(value.strip().lower())
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):  # before year 1, or past timedelta's range
            raise fail(f"--since: {value!r} reaches back before year 1; give a smaller age or a date") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"--since: expected an ISO 8601 date/time (2024-05-01, 2024-05-01T12:00:00+02:00) "
                   f"or an age (30m, 12h, 7d), got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def check_output_path(output: Path) -> None:
    """`-o` is a regular file (replaced) or a new name in an existing folder; anything else (a
    symbolic link, FIFO, device, folder) is refused, not replaced by a regular file (exit 2)."""
    try:
        mode = os.lstat(output).st_mode
    except FileNotFoundError:
        if not output.parent.is_dir():
            raise fail(f"-o {output}: no such folder {str(output.parent)!r}") from None
        return
    except OSError as exc:
        raise fail(f"-o {output}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise fail(f"-o {output}: is {kind}; export writes only to a regular file or a new path "
               f"(it would replace this with a regular file)")


@app.command()
def export(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to FILE (default: stdout)"),
    lang: Optional[str] = typer.Option(None, "--lang", help="Only these languages' texts, e.g. de or de,fr"),
    since: Optional[str] = typer.Option(None, "--since", help="Jobs finished since: ISO date/time, or an age (12h, 7d)"),
) -> None:
    """Finished jobs as JSON lines (one result each), oldest first, streamed."""
    import json

    langs = parse_targets(lang) if lang else []
    since_at = parse_since(since) if since else None
    if output is not None:
        check_output_path(output)
    settings = _settings()
    store = open_store(settings)
    tmp: Path | None = None
    show = output is not None and _show_progress(False)
    try:
        if output is not None:
            # write next to the target and rename at the end: a reader never sees half a file
            tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
            try:
                sink = tmp.open("x", encoding="utf-8")
            except OSError as exc:
                tmp = None
                raise fail(f"-o {output}: cannot write there ({exc.strerror or exc})") from None
        else:
            sink = sys.stdout
        n = 0
        with (sink if output is not None else nullcontext(sink)) as fh, _progress(show) as progress:
            task = progress.add_task("export", total=None) if progress else None
            for result in store.iter_results(since=since_at, langs=langs):
                fh.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                n += 1
                if progress and n % 500 == 0:
                    progress.update(task, completed=n)
        if tmp is not None and output is not None:
            tmp.replace(output)
            tmp = None
            typer.echo(f"exported {n} results to {output}", err=True)
    except BrokenPipeError:  # `babelwire export | head`
        sys.stderr.close()
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        store.close()


# --- worker ----------------------------------------------------------------------------------


# Process model (measured by benchmarks/worker_pools.py on the 2-core build machine, a
# Marian-base shaped en→de model, int8, 24 articles; best of 2 interleaved rounds):
#
#   pool / processes × CTranslate2 threads   articles/s   peak RSS
#   prefork 2 × 1                             0.55         550 MB
#   prefork 1 × 2                             0.43         339 MB
#   solo    1 × 2                             0.38         234 MB
#   threads 2 × 2 (one shared model)          0.33         235 MB
#
# On a second machine (AVX-512 VNNI, 48 articles): prefork 2 × 1 4.38 articles/s 546 MB,
# threads 2 × 2 1.21 / 232 MB, threads 16 × 2 batching 16 articles (BABELWIRE_BATCH_ARTICLES)
# 4.52 / 483 MB: batching is what makes one shared model keep up.
#
# prefork with one process per core and one CTranslate2 thread each is the default: the
# fastest (the pipeline's Python stages — cleaning, segmentation, the store — run in
# parallel too, which threads cannot do under the GIL and solo does not do at all), and
# the only pool that enforces the soft/hard time limits and survives a crash in native
# code (the pool process dies, its message is redelivered). It costs one copy of the
# models per process. Sizing: N cores → `-c N` (BABELWIRE_THREADS=0 gives each process
# cores/N threads); when memory is short, fewer processes with more threads each
# (`-c 2` with BABELWIRE_THREADS=N/2). GPU: `-c 1` per GPU (BABELWIRE_DEVICE=cuda): one
# process owns the models on the device and CTranslate2 batches on it; more processes
# would each hold a copy in GPU memory. Add processes for CPU stages only if the GPU idles.


def worker_argv(settings: Settings, extra: list[str]) -> list[str]:
    """`celery worker` arguments: our defaults first, the user's after (Click: last one wins)."""
    from worker.queues import QUEUES

    argv = ["worker", "--queues", ",".join(QUEUES), "--pool", settings.worker_pool,
            "--loglevel", settings.log_level]
    if settings.worker_pool != "solo":
        argv += ["--concurrency", str(settings.worker_concurrency or os.cpu_count() or 1)]
    return argv + list(extra)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def worker(ctx: typer.Context) -> None:
    """Start a worker: queues live,bulk (live first), pool and concurrency from settings.

    Extra arguments go to `celery worker` and win over the defaults, e.g.
    `babelwire worker -Q live -c 1 -n live@%h`. `babelwire worker --help` shows Celery's options.
    """
    settings = _settings()
    try:
        from worker.celery_app import create_app

        celery_app = create_app(settings)
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from None
    if "--help" not in ctx.args:
        from worker.broker.server import check_broker_version

        problem = check_broker_version(settings.broker_url)
        if problem:
            raise fail(problem)
        open_store(settings).close()  # migrate before the first task needs the tables
    from worker import metrics as telemetry

    telemetry.install()  # metrics and JSON logs, connected to Celery's signals before the pool starts
    celery_app.worker_main(worker_argv(settings, ctx.args))
