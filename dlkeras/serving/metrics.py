"""The server's Prometheus metrics, in a registry of their own (served at /metrics).

    dlkeras_serve_requests_total{model, endpoint, code}   every answered request
    dlkeras_serve_errors_total{model, code}               those answered with 4xx or 5xx
    dlkeras_serve_request_seconds{model}                  predict latency, read to answered
    dlkeras_serve_instances_total{model}                  instances predicted
    dlkeras_serve_batch_size{model}                       items per runtime call
    dlkeras_serve_queued_instances                        instances waiting for a batch now
    dlkeras_serve_cache_hits_total{model}, dlkeras_serve_cache_misses_total{model}
    process_resident_memory_bytes, process_cpu_seconds_total, ...   the server process

`model` is "name:version" for a served model, "" for requests that name no served model (so
unknown names cannot grow the label set).
"""

from __future__ import annotations

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The counters and histograms, registered in `registry` (a fresh one per server)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        common = {"registry": self.registry, "namespace": "dlkeras_serve"}
        self.requests = Counter("requests", "Requests answered, by endpoint and status code",
                                ["model", "endpoint", "code"], **common)
        self.errors = Counter("errors", "Requests answered with a 4xx or 5xx status", ["model", "code"],
                              **common)
        self.latency = Histogram("request_seconds", "Predict requests: seconds from arrival to answer",
                                 ["model"], buckets=LATENCY_BUCKETS, **common)
        self.instances = Counter("instances", "Instances predicted", ["model"], **common)
        self.batch_size = Histogram("batch_size", "Items per call of a model's runtime", ["model"],
                                    buckets=BATCH_BUCKETS, **common)
        self.cache_hits = Counter("cache_hits", "Instances answered from the prediction cache",
                                  ["model"], **common)
        self.cache_misses = Counter("cache_misses", "Instances not in the prediction cache", ["model"],
                                    **common)
        self.queued = Gauge("queued_instances", "Instances waiting for a batch", **common)

    def answered(self, model: str, endpoint: str, code: int) -> None:
        """Counts one answered request (and an error when `code` is 4xx or 5xx)."""
        self.requests.labels(model, endpoint, str(code)).inc()
        if code >= 400:
            self.errors.labels(model, str(code)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """(the metrics in Prometheus' text format, its content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def label(model) -> str:
    """The `model` label of a served model ("name:version")."""
    return f"{model.name}:{model.version}"
