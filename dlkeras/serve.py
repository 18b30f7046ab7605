"""python -m dlkeras.serve SAVED_MODELS [--port 8501] [--host 127.0.0.1] [--format fastest] ...

Serves exported models over HTTP with TensorFlow Serving's REST API, on raw inputs: texts,
table rows, base64 images, recent days. SAVED_MODELS is the export folder (recipes and their
versions), one recipe's folder, or one version folder; the latest version of each model is
served (--all-versions: every complete one), in the runtime of --format ("fastest": the
quickest format at batch 1 that passed the parity gate, by the latency table of
export_report.json; "throughput": the gated format with the most examples per second at its best
batch size, for a server under load).

    curl -d '{"instances": ["my bag never arrived"]}' \\
        http://127.0.0.1:8501/v1/models/bert_tickets:predict

Concurrent requests to a model share runtime calls (up to --max-batch-size instances, waiting
at most --max-wait-ms); recent predictions are cached (--cache-size). SIGTERM drains: requests
in flight are answered, then the server exits 0. The library is `dlkeras.serving`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dlkeras.cli import add_verbose_argument, exit_process, report_errors
from dlkeras.export.formats import ARTIFACTS
from dlkeras.quiet import quiet_start


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.serve",
        description="Serve exported models over HTTP (TensorFlow Serving's REST API, raw inputs).",
        epilog="Example: python -m dlkeras.serve saved_models/ --port 8501",
    )
    parser.add_argument("models", type=Path, metavar="SAVED_MODELS",
                        help="export folder (<recipe>/<version>/), one recipe's folder or one version folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8501,
                        help="port (TF Serving's REST port; 0: any free one)")
    parser.add_argument("--format", default="fastest", choices=["fastest", "throughput", *ARTIFACTS],
                        help="artifact to serve (default: the fastest at batch 1 that passed the "
                             "parity gate; throughput: the gated one with the most examples per second)")
    parser.add_argument("--all-versions", action="store_true",
                        help="serve every complete version, not only the latest of each model")
    parser.add_argument("--max-batch-size", type=int, default=32, help="most instances per runtime call")
    parser.add_argument("--max-wait-ms", type=float, default=2.0,
                        help="how long a request waits at most for others to share its batch "
                             "(never longer than the model's recent batches took to run)")
    parser.add_argument("--cache-size", type=int, default=1024,
                        help="predictions kept in the LRU cache (0: none)")
    parser.add_argument("--max-instances", type=int, default=1024, help="most instances in one request")
    parser.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body, in MiB")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="on SIGTERM, how long requests in flight may take to finish")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # artifacts and tokenizers run on TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    """Check the settings, bind the port, load the models, serve until SIGTERM; 0 once drained."""
    from dlkeras.serving import app, registry, server

    settings = check_settings(args)
    sock = server.bind(args.host, args.port)
    try:
        models = registry.load_models(args.models, args.format, args.all_versions,
                                      say=lambda line: print(line, flush=True))
        print(f"listening on {server.address(sock)} (max batch {settings.max_batch_size}, max wait "
              f"{settings.max_wait_ms:g} ms, cache {settings.cache_size})", flush=True)
        server.run(app.build_app(models, settings), sock, args.drain_seconds, args.access_log)
    finally:
        sock.close()
    print("drained and stopped", flush=True)
    return 0


def check_settings(args):
    """The app settings from the arguments.

    Raises:
        ConfigError: a limit that is zero or negative.
    """
    from dlkeras.errors import ConfigError
    from dlkeras.serving.app import Settings

    wrong = [f"--{name.replace('_', '-')} {value:g}" for name, value, low in (
        ("max_batch_size", args.max_batch_size, 1), ("max_wait_ms", args.max_wait_ms, 0),
        ("cache_size", args.cache_size, 0), ("max_instances", args.max_instances, 1),
        ("max_body_mb", args.max_body_mb, 1e-3), ("drain_seconds", args.drain_seconds, 0),
    ) if value < low]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)}: batch size, instances and body size must be positive, "
                          "the wait, cache size and drain time zero or more")
    return Settings(args.max_batch_size, args.max_wait_ms, args.cache_size, args.max_instances,
                    int(args.max_body_mb * 2**20))


if __name__ == "__main__":
    exit_process(main())
