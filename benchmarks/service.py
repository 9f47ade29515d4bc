"""The service as a user runs it, for the queue figures: a Redis DB of the benchmarks' own, a
temporary SQLite store, `babelwire worker` and `babelwire enqueue` as subprocesses.

Times come from the store's own timestamps (`created_at` when `enqueue` wrote the job,
`started_at`/`finished_at` written by the worker), so polling intervals never enter a
figure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from benchmarks.common import ROOT, TOY_MODELS_DIR

FINAL_STATUSES = ("done", "partial", "failed")


def babelwire_command() -> list[str]:
    script = Path(sys.executable).with_name("babelwire")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from worker.cli import main; main()"]


def toy_models_dir() -> Path:
    """The models the queue figures run: the project's toy models, or the store named by
    BABELWIRE_BENCH_MODELS_DIR (to measure the queue with real models; it must serve the
    targets in BABELWIRE_BENCH_TARGETS, default qaa,qab)."""
    override = os.environ.get("BABELWIRE_BENCH_MODELS_DIR")
    if override:
        return Path(override)
    if not (TOY_MODELS_DIR / "toy-en-qaa" / "babelwire.json").exists():
        raise RuntimeError(f"toy models missing in {TOY_MODELS_DIR}: run python tests/fixtures/build_models.py")
    return TOY_MODELS_DIR


def bench_targets() -> str:
    return os.environ.get("BABELWIRE_BENCH_TARGETS", "qaa,qab")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@dataclass
class Service:
    """One isolated deployment: broker DB, database file, model store, settings."""

    workdir: Path
    redis_url: str
    models_dir: Path
    targets: str = field(default_factory=bench_targets)
    settings: dict[str, str] = field(default_factory=dict)  # extra BABELWIRE_* values
    database_url: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BABELWIRE_")}
        env.update(
            BABELWIRE_BROKER_URL=self.redis_url,
            BABELWIRE_DATABASE_URL=self.database_url,
            BABELWIRE_MODELS_DIR=str(self.models_dir),
            BABELWIRE_TARGETS=self.targets,
            BABELWIRE_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update({f"BABELWIRE_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def settings_object(self) -> Any:
        """The same configuration as a `Settings`, for in-process runs."""
        from worker.config import Settings

        return Settings(
            broker_url=self.redis_url, database_url=self.database_url, models_dir=self.models_dir,
            targets=self.targets, **self.settings,
        )

    def store(self) -> Any:
        from worker.store import Store

        store = Store(self.database_url)
        store.migrate()
        return store

    def enqueue(self, path: Path, queue: str = "bulk", timeout: float = 600) -> tuple[dict[str, Any], float]:
        """`babelwire enqueue PATH --queue Q --json`; returns its report and wall seconds."""
        started = time.perf_counter()
        out = subprocess.run(
            [*babelwire_command(), "enqueue", str(path), "--queue", queue, "--json"],
            env=self.env(), capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        )
        seconds = time.perf_counter() - started
        if out.returncode not in (0, 1):
            raise RuntimeError(f"enqueue failed ({out.returncode}): {out.stderr[-3000:]}")
        return json.loads(out.stdout), seconds

    @contextmanager
    def worker(self, *celery_args: str, ready_timeout: float = 180) -> Iterator["Worker"]:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        log_path = self.workdir / f"{name}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [*babelwire_command(), "worker", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel", "INFO", *celery_args],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )
        worker = Worker(proc, log_path)
        try:
            worker.wait_ready(ready_timeout)
            yield worker
        finally:
            worker.stop()


@dataclass
class Worker:
    proc: subprocess.Popen
    log_path: Path
    _peak_rss: int = 0
    _peak_pss: int = 0
    _sampler: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready after {timeout} s:\n{self.log[-3000:]}")
            time.sleep(0.1)
        # pool processes load their models right after the parent says ready: wait for them
        self.wait_quiet()

    def wait_quiet(self, settle_s: float = 1.0, timeout: float = 120) -> None:
        """Until the process tree's CPU use is near zero for `settle_s` (warm-up finished)."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            busy = sum(p.cpu_times().user + p.cpu_times().system for p in self.processes())
            time.sleep(0.25)
            busy = sum(p.cpu_times().user + p.cpu_times().system for p in self.processes()) - busy
            if busy < 0.05:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return
            else:
                quiet_since = None

    def processes(self) -> list[Any]:
        import psutil

        try:
            parent = psutil.Process(self.proc.pid)
            return [parent] + parent.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker's process tree so far (all threads)."""
        import psutil

        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def memory(self) -> tuple[int, int]:
        """(RSS, PSS) summed over the worker's process tree, bytes. PSS splits pages shared
        between the forked pool processes; the RSS sum counts them once per process."""
        import psutil

        rss = pss = 0
        for proc in self.processes():
            try:
                info = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        return rss, pss

    def start_sampling(self, interval_s: float = 0.25) -> None:
        def sample() -> None:
            while True:
                rss, pss = self.memory()
                self._peak_rss, self._peak_pss = max(self._peak_rss, rss), max(self._peak_pss, pss)
                if self._stop.wait(interval_s):
                    return

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def peak_memory(self) -> tuple[int, int]:
        rss, pss = self.memory()
        return max(self._peak_rss, rss), max(self._peak_pss, pss)

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        for _ in range(50):  # pool processes may outlive their parent for a moment
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def wait_final(store: Any, job_ids: Sequence[str], timeout: float, poll_s: float = 0.05) -> list[Any]:
    """Wait until every job is done/partial/failed; returns their rows."""
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending:
        statuses = store.statuses(list(pending))
        pending = {j for j in pending if statuses.get(j) not in FINAL_STATUSES}
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(job_ids)} jobs not finished after {timeout} s")
        time.sleep(poll_s)
    return [store.job(j) for j in job_ids]
