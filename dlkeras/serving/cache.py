"""A least-recently-used cache of predictions, keyed by model, version and the instance itself.

Two instances are the same input when their JSON is the same up to key order, so a client that
sends `{"a": 1, "b": 2}` and then `{"b": 2, "a": 1}` gets the second answer from the cache.
Used from the event loop only (no lock).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict


def cache_key(model: str, version: int, instance) -> tuple[str, int, bytes]:
    """The key of one instance sent to `model` version `version` (a digest of its JSON)."""
    text = json.dumps(instance, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return model, version, hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class PredictionCache:
    """The `capacity` most recently used predictions; a capacity of 0 keeps none.

    Attributes:
        capacity: how many predictions are kept; the least recently used goes first.
    """

    def __init__(self, capacity: int):
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict = OrderedDict()

    def get(self, key):
        """The cached prediction for `key` (now the most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        """Keeps `value` for `key`, dropping the least recently used entry when full."""
        if not self.capacity:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
