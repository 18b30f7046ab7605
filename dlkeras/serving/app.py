"""The Starlette app: TensorFlow Serving's REST routes, health, readiness and metrics.

    GET  /v1/models/<name>[/versions/<v>]             model_version_status
    GET  /v1/models/<name>[/versions/<v>]/metadata    inputs, outputs, an example instance
    POST /v1/models/<name>[/versions/<v>]:predict     {"instances": [...]} or {"inputs": ...}
    GET  /v1/models                                   every served model (not in TF Serving)
    GET  /healthz   the process answers          GET /readyz   models loaded, taking requests
    GET  /metrics   Prometheus

A predict request is answered instance by instance from the cache where it can; the rest are
decoded (`instances.CODECS`), queued in the model's micro-batcher and answered by its runtime
in a worker thread of their own per model. Every error is a JSON `{"error": "..."}` that names
the problem and the fix: 400 for a bad request, 404 for an unknown model or version, 413 for a
body over the limit, 503 while shutting down, 500 (logged, the server keeps running) for a fault
of the server itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dlkeras.errors import DlkerasError
from dlkeras.serving.batcher import BatcherClosed, MicroBatcher
from dlkeras.serving.cache import PredictionCache, cache_key
from dlkeras.serving.instances import Scratch, decode_all
from dlkeras.serving.metrics import Metrics, label
from dlkeras.serving.request import RequestError, instances_to_columns, parse_predict, read_body

log = logging.getLogger("dlkeras.serve")
ROUTES = ("GET /v1/models/<name>[/versions/<v>][/metadata], POST /v1/models/<name>[/versions/<v>]:predict, "
          "GET /healthz, /readyz, /metrics")


@dataclass(frozen=True)
class Settings:
    """How requests are batched, cached and limited.

    Attributes:
        max_batch_size: the most instances one runtime call receives (fewer for a model whose
            export timed a smaller batch faster per example: `ServedModel.batch_size`).
        max_wait_ms: how long a request waits at most for others to share its batch (never
            longer than the model's recent batches took to run: `MicroBatcher.max_wait_now`).
        cache_size: predictions kept in the LRU cache (0: no cache).
        max_instances: the most instances one request may send.
        max_body_bytes: the largest request body read.
    """

    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    cache_size: int = 1024
    max_instances: int = 1024
    max_body_bytes: int = 16 * 2**20


class Service:
    """What the routes share: the models, a batcher and a worker thread per model, the cache."""

    def __init__(self, registry, settings: Settings):
        self.registry, self.settings = registry, settings
        self.cache = PredictionCache(settings.cache_size)
        self.metrics = Metrics()
        self.batchers: dict[tuple[str, int], MicroBatcher] = {}
        self.executors: list[ThreadPoolExecutor] = []
        self.ready = False

    async def start(self) -> None:
        """One batcher per model, each running its runtime in a thread of its own."""
        for model in self.registry:
            # one thread per model: a TFLite interpreter must not be called from two at once
            executor = ThreadPoolExecutor(1, thread_name_prefix=f"{model.name}-v{model.version}")
            size = min(self.settings.max_batch_size, model.batch_size or self.settings.max_batch_size)
            batcher = MicroBatcher(model.answer, size, self.settings.max_wait_ms,
                                   executor, self.metrics.batch_size.labels(label(model)).observe)
            batcher.start()
            self.executors.append(executor)
            self.batchers[(model.name, model.version)] = batcher
        self.metrics.queued.set_function(lambda: sum(b.waiting for b in self.batchers.values()))
        self.ready = True

    async def stop(self) -> None:
        """Answers every queued request, then stops the batchers and their threads."""
        self.ready = False
        for batcher in self.batchers.values():
            await batcher.close()
        for executor in self.executors:
            executor.shutdown(wait=True)

    async def predict(self, model, instances: list) -> list[dict]:
        """One prediction per instance: cached ones at once, the rest through the batcher."""
        from starlette.concurrency import run_in_threadpool

        tag = label(model)
        keys = [cache_key(model.name, model.version, i) for i in instances] if self.cache.capacity else []
        results = [self.cache.get(key) for key in keys] if keys else [None] * len(instances)
        missing = [i for i, result in enumerate(results) if result is None]
        if keys:
            self.metrics.cache_hits.labels(tag).inc(len(instances) - len(missing))
            self.metrics.cache_misses.labels(tag).inc(len(missing))
        if missing:
            scratch = Scratch()
            try:
                todo = [instances[i] for i in missing]
                if model.codec.blocking:
                    raw = await run_in_threadpool(decode_all, model, todo, missing, scratch)
                else:
                    raw = decode_all(model, todo, missing, scratch)
                answers = await self.batchers[(model.name, model.version)].submit(raw)
            finally:
                scratch.close()
            for i, answer in zip(missing, answers):
                results[i] = answer
                if keys:
                    self.cache.put(keys[i], answer)
        self.metrics.instances.labels(tag).inc(len(instances))
        return results


def build_app(registry, settings: Settings = Settings()):
    """The ASGI app serving `registry` (a `registry.Registry` of loaded models)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    service = Service(registry, settings)

    def answering(endpoint: str):
        """Wraps a handler returning a JSON-ready dict: errors as JSON, every answer counted."""
        def wrap(handler):
            async def route(request):
                code = 200
                try:
                    response = JSONResponse(await handler(request))
                except RequestError as error:
                    code, payload = error.status, {"error": str(error)}
                except DlkerasError as error:  # a converter refused an input
                    code, payload = 400, {"error": str(error)}
                except BatcherClosed as error:
                    code, payload = 503, {"error": str(error)}
                except Exception as error:  # a fault of the server: logged, answered, survived
                    log.exception("%s %s failed", request.method, request.url.path)
                    code, payload = 500, {"error": f"internal error ({type(error).__name__}: "
                                                   f"{str(error)[:200]}); the server keeps running, "
                                                   "its log has the details"}
                if code != 200:
                    response = JSONResponse(payload, status_code=code)
                model = getattr(request.state, "model", None)
                service.metrics.answered(label(model) if model else "", endpoint, code)
                return response
            return route
        return wrap

    def resolve(request, verb_allowed: bool = False):
        name, _, verb = request.path_params["name"].partition(":")
        if verb and not verb_allowed:
            raise RequestError(f"/v1/models/{name}:{verb} answers POST requests; GET "
                               f"/v1/models/{name} gives the model's status", status=405)
        model = service.registry.get(name, request.path_params.get("version"))
        request.state.model = model
        return model

    @answering("predict")
    async def predict(request):
        started = time.perf_counter()
        model = resolve(request, verb_allowed=True)
        body = await read_body(request, settings.max_body_bytes)
        instances, columnar = parse_predict(body, settings.max_instances)
        predictions = await service.predict(model, instances)
        service.metrics.latency.labels(label(model)).observe(time.perf_counter() - started)
        return {"outputs": instances_to_columns(predictions)} if columnar else {"predictions": predictions}

    @answering("status")
    async def status(request):
        model = resolve(request)
        versions = ([model] if "version" in request.path_params
                    else sorted(service.registry.versions(model.name).values(), key=lambda m: -m.version))
        return {"model_version_status": [version_status(m) for m in versions]}

    @answering("metadata")
    async def metadata(request):
        return model_metadata(resolve(request))

    @answering("models")
    async def models(request):
        return {"models": [{"name": m.name, "version": str(m.version), "format": m.format,
                            "task": m.task, "kind": m.preprocessing["kind"]} for m in service.registry]}

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def readyz(request):
        if not service.ready:
            return JSONResponse({"ready": False, "error": "not taking requests (starting or shutting "
                                 "down); retry in a moment"}, status_code=503)
        return JSONResponse({"ready": True, "models": [label(m) for m in service.registry]})

    async def metrics(request):
        content, media_type = service.metrics.exposition()
        return Response(content, media_type=media_type)

    async def http_error(request, error: HTTPException):
        if error.status_code == 404:
            message = f"no route {request.url.path}; the routes are {ROUTES}"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; the routes are {ROUTES}"
        else:
            message = str(error.detail)
        service.metrics.answered("", "unknown", error.status_code)
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=[
            Route("/v1/models/{name}:predict", predict, methods=["POST"]),
            Route("/v1/models/{name}/versions/{version}:predict", predict, methods=["POST"]),
            Route("/v1/models/{name}/metadata", metadata, methods=["GET"]),
            Route("/v1/models/{name}/versions/{version}/metadata", metadata, methods=["GET"]),
            Route("/v1/models/{name}/versions/{version}", status, methods=["GET"]),
            Route("/v1/models/{name}", status, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def version_status(model) -> dict:
    """One entry of TensorFlow Serving's model_version_status."""
    return {"version": str(model.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}


def model_metadata(model) -> dict:
    """TensorFlow Serving's metadata answer, with dlkeras' description of the raw inputs."""
    described = model.codec.describe(model.preprocessing)
    signature = {"inputs": described["inputs"], "outputs": described["outputs"],
                 "method_name": "tensorflow/serving/predict"}
    about = {"task": model.task, "kind": model.preprocessing["kind"], "format": model.format,
             "artifact": model.path.name, "instance": described["instance"], "example": described["example"]}
    if model.preprocessing.get("class_names"):
        about["class_names"] = model.preprocessing["class_names"]
    if "horizon_days" in model.preprocessing:
        about |= {"input_days": model.preprocessing["input_days"],
                  "horizon_days": model.preprocessing["horizon_days"]}
    return {"model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}},
                         "dlkeras": about}}
