"""One-off work on a data set, shared out between the processes of a multi-worker run.

Every process of a multi-worker run builds the same data set. The work done once per data set
(checking every image file, counting the tokens of the training texts, tokenizing the
validation and test texts) is cut into contiguous shares, one per process: each process does
its own share, the results are exchanged, and every process ends with all of them in order,
as one process alone would have computed them. So that work runs once, not once per process.

The engine sets the team when it starts a multi-process run (`set_team`, with its collective
`exchange`); in one process `share` simply calls the function on every item. Results travel
as JSON (lists) or as numpy arrays (`.npz` without pickles), never as pickled objects.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence

import numpy as np

_TEAM = [None]  # (index, processes, exchange) of a multi-process run (set_team)


def set_team(index: int, processes: int, exchange: Callable[[bytes], list[bytes]] | None) -> None:
    """Work shared from now on is split between `processes` processes; this is process `index`.

    Args:
        exchange: sends this process's bytes to every process and returns every process's
            bytes in process order (a collective: every process calls it at the same point).
    """
    _TEAM[0] = (index, processes, exchange) if processes > 1 else None


def processes() -> int:
    """How many processes share the work (1 outside a multi-process run)."""
    return _TEAM[0][1] if _TEAM[0] else 1


def bounds(count: int, parts: int) -> list[int]:
    """Where each of `parts` contiguous shares of `count` items starts, and the end."""
    return [count * part // parts for part in range(parts + 1)]


def share(function: Callable, items: Sequence, what: str):
    """`function(items)`, computed in shares: each process calls `function` on its contiguous
    share of `items` and every process gets back the results for all items, in order.

    Args:
        function: a share of `items` (a list) -> one result per item: a list of JSON values,
            a numpy array with one row per item, or a dict of such arrays.
        what: what the work is, for the line saying how it was shared.

    Returns:
        The results for every item, of the type `function` returns.
    """
    items = list(items)
    if _TEAM[0] is None:
        return function(items)
    index, count, exchange = _TEAM[0]
    edges = bounds(len(items), count)
    mine = items[edges[index]:edges[index + 1]]
    print(f"{what}: {len(mine)} of {len(items)} here, the rest by the other {count - 1} "
          f"process(es)", flush=True)
    every = [_decode(part) for part in exchange(_encode(function(mine)))]
    return _join(every)


def _encode(results) -> bytes:
    if isinstance(results, (np.ndarray, dict)):
        arrays = results if isinstance(results, dict) else {"": results}
        buffer = io.BytesIO()
        np.savez(buffer, **{f"a{name}": np.asarray(value) for name, value in arrays.items()})
        return b"N" + buffer.getvalue()
    return b"J" + json.dumps(list(results)).encode()


def _decode(data: bytes):
    if data[:1] == b"J":
        return json.loads(data[1:].decode())
    with np.load(io.BytesIO(data[1:]), allow_pickle=False) as stored:
        arrays = {name[1:]: stored[name] for name in stored.files}
    return arrays[""] if list(arrays) == [""] else arrays


def _join(parts: list):
    if isinstance(parts[0], list):
        return [result for part in parts for result in part]
    if isinstance(parts[0], dict):
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return np.concatenate(parts)
