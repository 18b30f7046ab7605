"""PredictionCache: least recently used first out; keys ignore JSON key order."""

from dlkeras.serving.cache import PredictionCache, cache_key


def test_least_recently_used_goes_first():
    cache = PredictionCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_updating_a_key_keeps_one_entry():
    cache = PredictionCache(2)
    cache.put("a", 1)
    cache.put("a", 5)
    assert len(cache) == 1 and cache.get("a") == 5


def test_capacity_zero_keeps_nothing():
    cache = PredictionCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_keys_are_the_same_input_up_to_key_order_and_differ_by_model_and_version():
    row = {"tenure": 3, "contract": "Month-to-month"}
    same = {"contract": "Month-to-month", "tenure": 3}
    assert cache_key("mlp_churn", 1, row) == cache_key("mlp_churn", 1, same)
    assert cache_key("mlp_churn", 1, row) != cache_key("mlp_churn", 2, row)
    assert cache_key("mlp_churn", 1, row) != cache_key("other", 1, row)
    assert cache_key("mlp_churn", 1, row) != cache_key("mlp_churn", 1, {**row, "tenure": 4})
    assert cache_key("m", 1, "ticket") != cache_key("m", 1, ["ticket"])
