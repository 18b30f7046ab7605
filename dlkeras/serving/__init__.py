"""Exported models over HTTP with TensorFlow Serving's REST API: `python -m dlkeras.serve`.

    registry.py    the models of a folder of exports, each loaded in the runtime of its format
    instances.py   request instances -> raw inputs -> predictions, per data kind (the kinds' own
                   converters do the preprocessing, as in `python -m dlkeras.predict`)
    request.py     a request body -> its instances, or a RequestError naming the fix
    batcher.py     dynamic micro-batching on asyncio in front of each model's runtime
    cache.py       LRU cache of recent predictions, keyed by model, version and instance
    metrics.py     Prometheus counters and histograms
    app.py         the Starlette app: routes, errors as JSON, start and drain
    server.py      binds the port and runs the app under uvicorn (graceful drain on SIGTERM)

Nothing here imports TensorFlow, Keras or a runtime at module level.
"""
