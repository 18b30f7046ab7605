"""Progress of long loops, and the time each step of a command took.

`track` wraps a loop: on a terminal, a tqdm bar with rate and time left on stderr; anywhere
else (CI logs, pipes, captured output) a plain line at most every `LINE_SECONDS` and one at
the end, since a bar redrawn with carriage returns turns a log file into one long line.

`step` times a named step of a command; the command prints `step_table` at its end. Steps
are not nested: each second belongs to one step, so the shares add up.
"""

from __future__ import annotations

import contextlib
import sys
import time

LINE_SECONDS = 10.0  # between two plain progress lines
TABLE_MIN_SECONDS = 1.0  # shorter steps are left out of the step table

_steps: list[tuple[str, float]] = []


def track(iterable, total: int | None = None, what: str = "working", size=None,
          interval: float = LINE_SECONDS, stream=None):
    """Yields the items of `iterable` unchanged while showing how far the loop has got.

    Args:
        total: how many units the loop covers (default: `len(iterable)` when it has one).
        what: the name shown before the counts, e.g. "caching backbone features".
        size: item -> the units it counts for (e.g. `rows_in` for batches); default 1.
        interval: seconds between two plain lines (a terminal's bar redraws as tqdm decides).
        stream: where progress goes (default: sys.stderr at the time of the call).
    """
    stream = stream or sys.stderr
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if _is_terminal(stream):
        yield from _bar(iterable, total, what, size, stream)
    else:
        yield from _lines(iterable, total, what, size, interval, stream)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _bar(iterable, total, what, size, stream):
    from tqdm import tqdm

    with tqdm(total=total, desc=what, file=stream, dynamic_ncols=True) as bar:
        for item in iterable:
            yield item  # counted once the consumer comes back for the next item: it is done
            bar.update(size(item) if size else 1)


def _lines(iterable, total, what, size, interval, stream):
    started = time.perf_counter()
    last, done = started, 0
    for item in iterable:
        yield item
        done += size(item) if size else 1
        now = time.perf_counter()
        if now - last >= interval:
            last = now
            _write(stream, describe(what, done, total, now - started))
    _write(stream, describe(what, done, total, time.perf_counter() - started, finished=True))


def _write(stream, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def describe(what: str, done: int, total: int | None, seconds: float, finished: bool = False) -> str:
    """One plain progress line: "what: 4096/9999 (41%), 45 s, about 65 s left".

    The time left assumes the rest goes at the mean rate so far.
    """
    if finished:
        return f"{what}: {done}{f'/{total}' if total else ''} in {duration(seconds)}"
    if not total:
        return f"{what}: {done}, {duration(seconds)}"
    left = seconds / done * max(total - done, 0) if done else None
    eta = f", about {duration(left)} left" if left is not None else ""
    return f"{what}: {done}/{total} ({done / total:.0%}), {duration(seconds)}{eta}"


def duration(seconds: float) -> str:
    """Seconds for a person: "45 s", "12.5 min", "2.1 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def rows_in(batch) -> int:
    """Examples in a batch of model inputs: an array, or a dict/list/tuple of arrays."""
    while isinstance(batch, (dict, list, tuple)):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch)


@contextlib.contextmanager
def step(name: str):
    """Times the block as step `name` of the running command (kept for `step_table`)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record(name, time.perf_counter() - started)


def record(name: str, seconds: float) -> None:
    """Adds a step timed elsewhere (e.g. a stage that measures itself)."""
    _steps.append((name, float(seconds)))


def steps() -> list[tuple[str, float]]:
    """(name, seconds) of every step recorded since the last `reset_steps`, in order."""
    return list(_steps)


def reset_steps() -> None:
    _steps.clear()


def step_table(min_seconds: float = TABLE_MIN_SECONDS) -> str:
    """A markdown table of the steps and their seconds and share; "" when there are none."""
    total = sum(seconds for _, seconds in _steps)
    shown = [(name, seconds) for name, seconds in _steps if seconds >= min_seconds]
    if not shown:
        return ""
    rows = ["| step | seconds | share |", "| --- | ---: | ---: |"]
    rows += [f"| {name} | {seconds:.1f} | {seconds / total:.0%} |" for name, seconds in shown]
    hidden = len(_steps) - len(shown)
    label = f"total ({hidden} steps under {min_seconds:g} s not shown)" if hidden else "total"
    rows.append(f"| {label} | {total:.1f} | 100% |")
    return "\n".join(rows)


def print_step_table(file=None) -> None:
    """Prints the step table (when there is one) and starts the next command afresh."""
    table = step_table()
    if table:
        print("\n" + table, file=file or sys.stdout, flush=True)
    reset_steps()
