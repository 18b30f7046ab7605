"""MicroBatcher: requests arriving together share a batch, the wait is bounded, errors stay local."""

import asyncio
import threading
import time

import pytest

from dlkeras.serving.batcher import BatcherClosed, MicroBatcher


class Runtime:
    """Doubles numbers, records each batch; refuses negative numbers."""

    def __init__(self, seconds: float = 0.0):
        self.batches, self.seconds, self.threads = [], seconds, set()

    def __call__(self, items):
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if any(item < 0 for item in items):
            raise ValueError("negative input")
        return [2 * item for item in items]


def serve(runtime, requests, **settings):
    """Submits every request at once; returns (results or exceptions, seconds per request)."""
    async def main():
        batcher = MicroBatcher(runtime, **settings)
        batcher.start()

        async def timed(items):
            started = time.perf_counter()
            try:
                result = await batcher.submit(items)
            except Exception as error:
                result = error
            return result, time.perf_counter() - started

        answers = await asyncio.gather(*(timed(items) for items in requests))
        await batcher.close()
        return answers

    answers = asyncio.run(main())
    return [a[0] for a in answers], [a[1] for a in answers]


def test_requests_arriving_together_are_served_in_one_batch():
    runtime = Runtime()
    results, _ = serve(runtime, [[1], [2, 3], [4]], max_batch_size=8, max_wait_ms=50)
    assert runtime.batches == [[1, 2, 3, 4]]
    assert results == [[2], [4, 6], [8]]


def test_a_full_batch_goes_without_waiting():
    runtime = Runtime()
    _, seconds = serve(runtime, [[1], [2]], max_batch_size=2, max_wait_ms=5000)
    assert runtime.batches == [[1, 2]] and max(seconds) < 2


def test_a_lone_request_waits_at_most_max_wait():
    runtime = Runtime()
    _, seconds = serve(runtime, [[1]], max_batch_size=32, max_wait_ms=200)
    assert 0.2 <= seconds[0] < 1.5


def lone_requests(runtime, max_wait_ms: float, count: int = 3) -> list[float]:
    """Seconds each of `count` requests took, sent one after another (each alone in its batch)."""
    async def main():
        batcher = MicroBatcher(runtime, max_batch_size=32, max_wait_ms=max_wait_ms)
        batcher.start()
        seconds = []
        for i in range(count):
            started = time.perf_counter()
            await batcher.submit([i])
            seconds.append(time.perf_counter() - started)
        await batcher.close()
        return seconds

    return asyncio.run(main())


def test_a_fast_runtime_cuts_the_wait_after_its_first_batch():
    first, *later = lone_requests(Runtime(), max_wait_ms=400)
    assert first >= 0.4  # nothing measured yet: the full wait
    assert max(later) < 0.2  # a batch takes well under 0.4 s: waiting longer leaves it idle


def test_a_slow_runtime_keeps_the_full_wait():
    seconds = lone_requests(Runtime(seconds=0.5), max_wait_ms=200)
    assert all(s >= 0.2 + 0.5 for s in seconds)


def test_batches_hold_whole_requests_up_to_the_size_limit():
    runtime = Runtime()
    results, _ = serve(runtime, [[1, 2], [3, 4], [5, 6], [7]], max_batch_size=4, max_wait_ms=20)
    assert runtime.batches == [[1, 2, 3, 4], [5, 6, 7]]
    assert results == [[2, 4], [6, 8], [10, 12], [14]]


def test_a_request_over_the_size_limit_runs_alone_in_slices():
    runtime = Runtime()
    results, _ = serve(runtime, [list(range(10))], max_batch_size=4, max_wait_ms=0)
    assert [len(batch) for batch in runtime.batches] == [4, 4, 2]
    assert results == [[2 * i for i in range(10)]]


def test_a_bad_request_fails_alone_and_its_neighbours_are_answered():
    runtime = Runtime()
    results, _ = serve(runtime, [[1], [-1], [3]], max_batch_size=8, max_wait_ms=50)
    assert results[0] == [2] and results[2] == [6]
    assert isinstance(results[1], ValueError)


def test_requests_queued_during_a_batch_form_the_next_one_off_the_event_loop():
    runtime = Runtime(seconds=0.2)

    async def main():
        batcher = MicroBatcher(runtime, max_batch_size=8, max_wait_ms=0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)  # the first batch is running in its thread now
        started = time.perf_counter()
        later = [asyncio.ensure_future(batcher.submit([i])) for i in (2, 3, 4)]
        await asyncio.sleep(0.01)
        loop_was_free = time.perf_counter() - started < 0.1
        await asyncio.gather(first, *later)
        await batcher.close()
        return loop_was_free

    assert asyncio.run(main())
    assert runtime.batches == [[1], [2, 3, 4]]
    assert runtime.threads != {threading.main_thread().name}


def test_close_answers_queued_requests_then_refuses_new_ones():
    runtime = Runtime()

    async def main():
        batcher = MicroBatcher(runtime, max_batch_size=8, max_wait_ms=10_000)
        batcher.start()
        queued = asyncio.ensure_future(batcher.submit([5]))
        await asyncio.sleep(0.05)
        assert batcher.waiting == 1
        started = time.perf_counter()
        await batcher.close()  # does not sit out the 10 s wait
        assert time.perf_counter() - started < 2
        with pytest.raises(BatcherClosed):
            await batcher.submit([1])
        return await queued

    assert asyncio.run(main()) == [10]


def test_settings_are_checked():
    with pytest.raises(ValueError):
        MicroBatcher(Runtime(), max_batch_size=0)
