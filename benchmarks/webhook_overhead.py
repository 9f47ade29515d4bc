"""`webhook_overhead`: processing throughput with a dead webhook receiver over none configured.

Same articles (news-like, distinct per round), same toy models and targets, translation
memory off, one warm `babelwire worker` per round (default pool), rates from the store's
own timestamps (first job created → last job finished), as in `queue_efficiency`:

- none: no endpoint registered, no dispatcher;
- hung: an endpoint on 127.0.0.1 whose listener never accepts (connections hang until the
  connect timeout, or sit unanswered until the read timeout);
- refused: an endpoint on a closed 127.0.0.1 port (every attempt fails at once, so the
  dispatcher retries as fast as its backoff lets it: the most outbox writes);

with `babelwire webhooks dispatch` running beside the worker in both, retrying with a short
backoff (1 s base, 5 s cap: far more attempts than the defaults' 5 s and 1 h); every finished
job writes its event and delivery rows in the result's transaction.

Rounds alternate (none, hung, refused, none, …; 3 rounds) and the best round of each side
counts. `webhook_dead_receiver_throughput_ratio` = the worse of hung and refused over none
(the target is ≥ 0.95); `…_hung` and `…_refused` each; `…_per_cpu_second` the same in
articles per CPU-second, the dispatcher's CPU counted on the dead sides (on a shared machine
the wall-clock rates move with the other load; CPU-seconds much less). A note gives the deliveries attempted, so the
figure is known to have had a receiver to fail on.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from benchmarks.common import ROOT, SCALES, Scale, bench_redis_db, note, report
from benchmarks.queue_efficiency import articles, service_rate
from benchmarks.service import Service, babelwire_command, toy_models_dir


@contextmanager
def dead_receiver() -> Iterator[int]:
    """A port on 127.0.0.1 that listens and never accepts: a receiver that is hung."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens: a receiver that is down."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    yield port


@contextmanager
def dispatcher(service: Service) -> Iterator[subprocess.Popen]:
    log = (service.workdir / "dispatch.log").open("a")
    proc = subprocess.Popen([*babelwire_command(), "webhooks", "dispatch"], env=service.env(), stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()


def dead_service(workdir: Path, redis_url: str, name: str, port: int) -> Service:
    service = Service(workdir / f"webhooks-{name}", redis_url, toy_models_dir(),
                      settings={"translation_memory": "false", "webhook_allow_networks": "127.0.0.1/32",
                                "webhook_retry_base_s": "1", "webhook_retry_max_s": "5"})
    service.store().close()
    added = subprocess.run([*babelwire_command(), "webhooks", "add", f"http://127.0.0.1:{port}/hook", "--json"],
                           env=service.env(), capture_output=True, text=True, cwd=ROOT)
    if added.returncode != 0:
        raise RuntimeError(f"webhooks add: {added.stderr[-2000:]}")
    return service


def deliveries(service: Service) -> tuple[int, int, int]:
    """(deliveries, attempts, delivered) in the service's outbox."""
    listed = subprocess.run([*babelwire_command(), "webhooks", "deliveries", "--json", "--limit", "100000"],
                            env=service.env(), capture_output=True, text=True, cwd=ROOT)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    return len(rows), sum(r["attempts"] for r in rows), sum(r["state"] == "delivered" for r in rows)


def run(scale: Scale, workdir: Path) -> None:
    warm = articles(4, seed=32, tag="warm")
    rounds = 1 if scale.name == "tiny" else 3
    with bench_redis_db() as redis_url, dead_receiver() as hung_port, closed_port() as closed:
        none = Service(workdir / "webhooks-none", redis_url, toy_models_dir(), settings={"translation_memory": "false"})
        dead = {"hung": dead_service(workdir, redis_url, "hung", hung_port),
                "refused": dead_service(workdir, redis_url, "refused", closed)}
        best = {"none": 0.0, "hung": 0.0, "refused": 0.0}
        per_cpu = {"none": 0.0, "hung": 0.0, "refused": 0.0}
        for r in range(rounds):
            batch = articles(scale.queue_articles, seed=300 + r, tag=f"w{r}")
            rate = service_rate(none, batch, warm, workdir)
            best["none"], per_cpu["none"] = max(best["none"], rate.per_s), max(per_cpu["none"], rate.per_cpu_s)
            for name, service in dead.items():
                with dispatcher(service) as proc:
                    wait_started(proc.pid)  # its interpreter start-up is not the webhooks' cost
                    started = cpu_seconds(proc.pid)
                    rate = service_rate(service, batch, warm, workdir)
                    dispatcher_cpu = cpu_seconds(proc.pid) - started
                best[name] = max(best[name], rate.per_s)
                # the dispatcher's CPU counts as the cost of the webhooks
                per_cpu[name] = max(per_cpu[name], rate.articles / (rate.cpu_s + dispatcher_cpu))
        counts = {name: deliveries(service) for name, service in dead.items()}
    for name, (rows, attempted, delivered) in counts.items():
        if not rows or delivered or not attempted:
            raise RuntimeError(f"{name}: the dead receiver was not in play: {rows} deliveries, "
                               f"{attempted} attempts, {delivered} delivered")
    note(f"webhooks: {scale.queue_articles} articles × {rounds} round(s); articles/s: none configured "
         f"{best['none']:.2f}, hung receiver {best['hung']:.2f}, refusing receiver {best['refused']:.2f}; "
         f"articles per CPU-second (worker tree + dispatcher): {per_cpu['none']:.1f}, {per_cpu['hung']:.1f}, "
         f"{per_cpu['refused']:.1f}; "
         + "; ".join(f"{name}: {rows} deliveries, {attempted} attempts, none delivered"
                     for name, (rows, attempted, _) in counts.items()))
    report("webhook_dead_receiver_throughput_ratio", min(best["hung"], best["refused"]) / best["none"], "ratio")
    report("webhook_dead_receiver_throughput_ratio_hung", best["hung"] / best["none"], "ratio")
    report("webhook_dead_receiver_throughput_ratio_refused", best["refused"] / best["none"], "ratio")
    # the same per CPU-second, which the machine's other load does not skew
    report("webhook_dead_receiver_throughput_ratio_per_cpu_second",
           min(per_cpu["hung"], per_cpu["refused"]) / per_cpu["none"], "ratio")


def wait_started(pid: int, timeout_s: float = 60) -> None:
    """Until the process has used (almost) no CPU for half a second: imports done, polling."""
    import time

    deadline, quiet, last = time.monotonic() + timeout_s, 0, cpu_seconds(pid)
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        quiet, last = (quiet + 1 if now - last < 0.02 else 0), now


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-webhooks-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
