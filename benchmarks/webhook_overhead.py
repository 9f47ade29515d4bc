"""`webhook_overhead`: processing throughput with a dead webhook receiver over none configured.

Same articles (news-like, distinct per round), same toy models and targets, translation
memory off, one warm `babelwire worker` per round (default pool), rates from the store's
own timestamps (first job created → last job finished), as in `queue_efficiency`:

- none: no endpoint registered, no dispatcher;
- dead: an endpoint on 127.0.0.1 whose listener never accepts (connections hang until the
  connect timeout, or sit unanswered until the read timeout) and `babelwire webhooks
  dispatch` running beside the worker, retrying; every finished job writes its event and
  delivery rows in the result's transaction.

Rounds alternate (none, dead, none, dead, …) and the best round of each side counts.
`webhook_dead_receiver_throughput_ratio` = dead / none (the target is ≥ 0.95). A note gives the deliveries the
dispatcher attempted meanwhile, so the figure is known to have had a receiver to fail on.
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


def run(scale: Scale, workdir: Path) -> None:
    warm = articles(4, seed=32, tag="warm")
    rounds = max(1, scale.engine_rounds)
    with bench_redis_db() as redis_url, dead_receiver() as port:
        none = Service(workdir / "webhooks-none", redis_url, toy_models_dir(), settings={"translation_memory": "false"})
        dead = Service(workdir / "webhooks-dead", redis_url, toy_models_dir(),
                       settings={"translation_memory": "false", "webhook_allow_networks": "127.0.0.1/32",
                                 "webhook_retry_base_s": "1", "webhook_retry_max_s": "5"})
        dead.store().close()
        added = subprocess.run([*babelwire_command(), "webhooks", "add", f"http://127.0.0.1:{port}/hook", "--json"],
                               env=dead.env(), capture_output=True, text=True, cwd=ROOT)
        if added.returncode != 0:
            raise RuntimeError(f"webhooks add: {added.stderr[-2000:]}")
        best = {"none": 0.0, "dead": 0.0}
        for r in range(rounds):
            batch = articles(scale.queue_articles, seed=300 + r, tag=f"w{r}")
            best["none"] = max(best["none"], service_rate(none, batch, warm, workdir).per_s)
            with dispatcher(dead):
                best["dead"] = max(best["dead"], service_rate(dead, batch, warm, workdir).per_s)
        listed = subprocess.run([*babelwire_command(), "webhooks", "deliveries", "--json", "--limit", "100000"],
                                env=dead.env(), capture_output=True, text=True, cwd=ROOT)
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
    attempted = sum(row["attempts"] for row in rows)
    delivered = sum(row["state"] == "delivered" for row in rows)
    if not rows or delivered:
        raise RuntimeError(f"the dead receiver was not in play: {len(rows)} deliveries, {delivered} delivered")
    note(f"webhooks: {scale.queue_articles} articles × {rounds} round(s); none configured "
         f"{best['none']:.2f} articles/s, dead receiver {best['dead']:.2f} articles/s; "
         f"{len(rows)} deliveries, {attempted} attempts, none delivered")
    report("webhook_dead_receiver_throughput_ratio", best["dead"] / best["none"], "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-bench-webhooks-") as tmp:
        run(SCALES[args.scale], args.workdir or Path(tmp))


if __name__ == "__main__":
    main()
