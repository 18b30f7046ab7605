"""Dynamic micro-batching: concurrent requests to one model share one runtime call.

    batcher = MicroBatcher(run_batch, max_batch_size=32, max_wait_ms=2, executor=pool)
    batcher.start()                                  # inside the running event loop
    predictions = await batcher.submit(instances)    # from any number of request handlers

A worker task takes the oldest waiting request, then waits up to `max_wait_ms` for more until
the batch holds `max_batch_size` items, and calls `run_batch(items) -> results` (one result per
item, in order) in `executor`, off the event loop. The wait is never longer than the runtime's
recent batches took to run (smoothed): a runtime that answers a batch in 0.1 ms would otherwise
sit idle for 2 ms per batch, while one that takes 50 ms per batch loses little to a 2 ms wait
that fills its batch. Requests are never split across batches; a request larger than
`max_batch_size` runs alone, in slices of `max_batch_size`. While a batch runs, new requests
queue up and form the next one, so under load batches fill without waiting.

When a batch of several requests fails, each request is run again on its own, so one bad input
fails only the request that sent it. `close` stops taking new requests and returns once every
queued request has been answered (the server drains this way on SIGTERM).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class BatcherClosed(RuntimeError):
    """The batcher no longer takes requests (the server is shutting down)."""


@dataclass
class _Request:
    items: list
    future: asyncio.Future


class MicroBatcher:
    """Groups the items of concurrent `submit` calls into calls of `run_batch`.

    Args:
        run_batch: items -> one result per item; called in `executor`, one batch at a time.
        max_batch_size: the most items one call of `run_batch` receives.
        max_wait_ms: how long the first waiting request waits at most for others to join its
            batch (no longer than the recent batches took to run).
        executor: where `run_batch` runs (None: the event loop's default thread pool).
        on_batch: called with the size of every batch (metrics).
    """

    def __init__(self, run_batch: Callable[[list], list], max_batch_size: int = 32,
                 max_wait_ms: float = 2.0, executor=None, on_batch: Callable[[int], None] | None = None):
        if max_batch_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size must be at least 1 and max_wait_ms at least 0")
        self.run_batch = run_batch
        self.max_batch_size = int(max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor
        self.on_batch = on_batch
        self._waiting: deque[_Request] = deque()
        self._waiting_items = 0
        self._batch_seconds: float | None = None  # the runtime's time per batch, smoothed
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        """Starts the worker task in the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work())

    async def submit(self, items: list) -> list:
        """The results of `items`, computed in a batch with whatever else is waiting.

        Raises:
            BatcherClosed: `close` was called.
            Exception: whatever `run_batch` raised for these items run on their own.
        """
        if self._closing or self._task is None:
            raise BatcherClosed("the server is shutting down; send the request again to another instance")
        items = list(items)
        if not items:
            return []
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(items, future))
        self._waiting_items += len(items)
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Takes no new requests; returns when every queued request has its answer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    @property
    def max_wait_now(self) -> float:
        """Seconds the next batch waits at most for more requests: `max_wait_ms`, capped by the
        smoothed time the runtime took per batch."""
        if self._batch_seconds is None:
            return self.max_wait
        return min(self.max_wait, self._batch_seconds)

    @property
    def waiting(self) -> int:
        """Items queued and not yet in a batch."""
        return self._waiting_items

    # === The worker ===

    async def _work(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._wait_for_more()
            await self._run(self._take())

    async def _wait_for_more(self) -> None:
        """Until the batch is full, `max_wait` after the worker found a request, or closing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_now
        while not self._closing and self._waiting_items < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Request]:
        """Whole requests from the front of the queue, up to `max_batch_size` items (at least one)."""
        taken, size = [], 0
        while self._waiting and (not taken or size + len(self._waiting[0].items) <= self.max_batch_size):
            request = self._waiting.popleft()
            taken.append(request)
            size += len(request.items)
        self._waiting_items -= size
        return taken

    async def _run(self, requests: list[_Request]) -> None:
        items = [item for request in requests for item in request.items]
        try:
            results = await self._call(items)
        except Exception as error:
            if len(requests) == 1:
                _answer(requests[0], error=error)
                return
            for request in requests:  # one bad input must not fail its neighbours
                try:
                    _answer(request, await self._call(request.items))
                except Exception as alone:
                    _answer(request, error=alone)
            return
        start = 0
        for request in requests:
            _answer(request, results[start : start + len(request.items)])
            start += len(request.items)

    async def _call(self, items: list) -> list:
        loop = asyncio.get_running_loop()
        results = []
        for start in range(0, len(items), self.max_batch_size):
            chunk = items[start : start + self.max_batch_size]
            if self.on_batch is not None:
                self.on_batch(len(chunk))
            began = time.perf_counter()
            results.extend(await loop.run_in_executor(self.executor, self.run_batch, chunk))
            seconds = time.perf_counter() - began
            self._batch_seconds = (seconds if self._batch_seconds is None
                                   else 0.8 * self._batch_seconds + 0.2 * seconds)
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} items")
        return results


def _answer(request: _Request, results: list | None = None, error: Exception | None = None) -> None:
    if request.future.done():  # the client went away and its handler was cancelled
        return
    if error is not None:
        request.future.set_exception(error)
    else:
        request.future.set_result(results)
