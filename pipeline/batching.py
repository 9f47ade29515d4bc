"""Cross-article batching for concurrent callers: many articles, one `process_batch`.

A worker thread runs one task, so one article, at a time; on its own each article's
sentences fill a small `translate_batch` call. `ArticleBatcher.process` lets the threads of
one worker process share the model calls: the first caller to arrive collects the articles
that other threads hand in for up to `window_s` (longer while an earlier batch is still
running, so batches grow with the load), then runs one `process_batch` for all of them and
each caller gets its own `Result`. Each message stays its own task (its own ack, retry and
failure); only the work is shared.

With `max_articles=1` (the default) `process` is a plain `process` call: no waiting, no
threads involved.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from pipeline.article import Article
from pipeline.engines import Engines
from pipeline.process import ProcessOptions, process, process_batch
from pipeline.result import Result


@dataclass(frozen=True)
class BatchOptions:
    max_articles: int = 1  # articles per batch; 1 = no batching
    window_s: float = 0.02  # how long the first article waits for others

    def __post_init__(self) -> None:
        if self.max_articles < 1:
            raise ValueError(f"max_articles must be >= 1, got {self.max_articles}")
        if not 0 <= self.window_s <= 5:
            raise ValueError(f"window_s must be between 0 and 5 s, got {self.window_s}")


@dataclass(eq=False)
class _Pending:
    article: Article
    taken: bool = False  # in a batch (being processed)
    done: bool = False
    result: Result | None = None  # None when done: the shared batch failed, go alone


@dataclass
class BatchStats:
    batches: int = 0
    articles: int = 0
    largest: int = 0


class ArticleBatcher:
    """Shares `process_batch` calls between threads that each process one article."""

    def __init__(self, engines: Engines, options: ProcessOptions | None = None,
                 batch: BatchOptions | None = None) -> None:
        self.engines = engines
        self.options = options
        self.batch = batch or BatchOptions()
        self.stats = BatchStats()
        self._changed = threading.Condition()
        self._waiting: list[_Pending] = []
        self._collecting = False  # a caller is gathering the waiting articles into a batch
        self._running = 0  # batches being processed

    def process(self, article: Article) -> Result:
        if self.batch.max_articles == 1:
            return process(article, self.engines, self.options)
        pending = _Pending(article)
        with self._changed:
            self._waiting.append(pending)
            self._changed.notify_all()
            while self._collecting and not pending.taken:
                self._changed.wait()
            batch = None if pending.taken else self._collect(pending)
            if batch:
                self._running += 1
        if batch:
            self._run(batch)
        with self._changed:
            while not pending.done:
                self._changed.wait()
        if pending.result is None:
            return process(article, self.engines, self.options)
        return pending.result

    def _collect(self, leader: _Pending) -> list[_Pending]:
        """With the lock held: wait for the window (and while an earlier batch runs, since
        the models are busy anyway), then take the leader's article and the oldest others."""
        self._collecting = True
        deadline = time.monotonic() + self.batch.window_s
        while len(self._waiting) < self.batch.max_articles:
            left = deadline - time.monotonic()
            if left <= 0 and not self._running:
                break
            self._changed.wait(left if left > 0 else None)
        others = [p for p in self._waiting if p is not leader][: self.batch.max_articles - 1]
        batch = [leader, *others]
        for p in batch:
            p.taken = True
        self._waiting = [p for p in self._waiting if not p.taken]
        self._collecting = False
        self._changed.notify_all()  # one of those left over leads the next batch
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        results: list[Result | None] = [None] * len(batch)
        try:
            results = list(process_batch([p.article for p in batch], self.engines, self.options))
        except Exception:
            pass  # a fault in a shared stage: each caller goes again on its own (`result` None),
            # so that only the article that causes it fails
        finally:
            with self._changed:
                self._running -= 1
                self.stats.batches += 1
                self.stats.articles += len(batch)
                self.stats.largest = max(self.stats.largest, len(batch))
                for pending, result in zip(batch, results):
                    pending.result, pending.done = result, True
                self._changed.notify_all()
