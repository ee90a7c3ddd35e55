"""Micro-batching: one worker thread runs the model on the patches of concurrent requests together."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from s2lc.errors import ArgumentError
from s2lc.uploads import ServeError

__all__ = ["Batcher", "BusyError"]

logger = logging.getLogger(__name__)


class BusyError(ServeError, RuntimeError):
    """The batch queue is full or closed; the client should retry later."""

    status = 503


class Batcher:
    """Runs ``predict`` in one worker thread on batches gathered from concurrent submissions.

    A submission waits in a queue; the worker takes the oldest and, until it has waited
    ``max_wait_s`` since it was queued, waits for more until ``max_batch`` patches are queued,
    then runs them together. A submission is
    never split, and is added to a batch only if the batch stays within ``max_batch`` (the
    first one always goes). The worker starts with the first submission.

    Args:
        predict: (n, bands, h, w) stored values (uint8 or float32) → (n, classes) float32; only the worker calls it.
        max_batch: patches per batch to aim for.
        max_wait_s: how long the oldest submission waits for company.
        max_queue: submissions waiting at most; more raise :class:`BusyError`.
    """

    def __init__(
        self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_wait_s: float = 0.005, max_queue: int = 64
    ):
        if max_batch < 1 or max_wait_s < 0 or max_queue < 1:
            raise ArgumentError(
                f"max_batch and max_queue must be ≥ 1 and max_wait_s ≥ 0, got {max_batch}, {max_queue}, {max_wait_s}"
            )
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.batches = 0  #: batches run so far
        self._items: deque[tuple[np.ndarray, Future, float]] = deque()  # patches, future, time queued
        self._queued = 0  # patches waiting
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Submissions waiting for the worker."""
        return len(self._items)

    def submit(self, patches: np.ndarray) -> Future:
        """Queue (n, bands, h, w) patches; the future resolves to their (n, classes) probabilities.

        Raises:
            BusyError: the queue is full, or the batcher is closed.
        """
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise BusyError("the server is shutting down; retry on another instance")
            if len(self._items) >= self.max_queue:
                raise BusyError(f"{len(self._items)} requests are already waiting for the model; retry shortly")
            self._items.append((patches, fut, time.monotonic()))
            self._queued += len(patches)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="s2lc-batcher", daemon=True)
                self._thread.start()
        return fut

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new submissions, finish the queued ones, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _take(self) -> list[tuple[np.ndarray, Future, float]] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            deadline = self._items[0][2] + self.max_wait_s  # the oldest has waited in the queue already
            while self._queued < self.max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._items.popleft()]
            total = len(batch[0][0])
            while self._items and total + len(self._items[0][0]) <= self.max_batch:
                batch.append(self._items.popleft())
                total += len(batch[-1][0])
            self._queued -= total
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [(x, f) for x, f, _ in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                probs = self.predict(np.concatenate([x for x, _ in live]) if len(live) > 1 else live[0][0])
            except BaseException as exc:  # every waiting request learns of it; the worker goes on
                logger.exception("inference failed on a batch of %d request(s)", len(live))
                for _, f in live:
                    f.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for x, f in live:
                f.set_result(probs[start : start + len(x)])
                start += len(x)
