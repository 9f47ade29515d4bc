"""Helpers for the API tests: `babelwire api` as a real uvicorn subprocess on a free port.

    from tests.api_server import api_servers  # the fixture (a factory), imported by the test module

`api_servers.start(env)` starts `babelwire api --port 0`, reads the port uvicorn bound from its
(JSON) log, and returns an `ApiServer`; every server a test started is stopped at teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.conftest import ROOT, babelwire_command

_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class ApiServer:
    proc: subprocess.Popen[str]
    log_path: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        return json_lines(self.log)

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log)
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"babelwire api exited with {self.proc.returncode}:\n{self.log[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"babelwire api not listening after {timeout} s:\n{self.log[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)


class ApiServerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[ApiServer] = []

    def start(self, env: dict[str, str], timeout: float = 60) -> ApiServer:
        log_path = self.tmp_path / f"api{len(self.started)}.log"
        with log_path.open("w") as log_file:
            proc = subprocess.Popen(
                [*babelwire_command(), "api", "--host", "127.0.0.1", "--port", "0"],
                env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True,
            )
        server = ApiServer(proc, log_path)
        self.started.append(server)
        server.wait_listening(timeout)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def api_servers(tmp_path: Path) -> Iterator[ApiServerFactory]:
    factory = ApiServerFactory(tmp_path)
    yield factory
    factory.stop_all()


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records in a process's output (a worker also prints a plain banner)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def free_port() -> int:
    """A port nobody listens on right now (for a process that cannot report the port it bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until the job is done, partial or failed; returns the job."""

    def finished() -> dict[str, Any] | None:
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        return job if job["status"] in ("done", "partial", "failed") else None

    return wait_until(finished, timeout, f"job {job_id} to finish")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text → {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, timeout=30).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """One sample's value, 0 when absent (a labelled counter appears on first increment)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
