"""The export report as a short markdown page: parity, sizes and latencies in tables."""

from __future__ import annotations


def _size(count: int) -> str:
    return f"{count / 2**20:.2f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


def summary_markdown(report: dict) -> str:
    verdict = "all formats passed" if report["passed"] else "SOME FORMATS FAILED"
    metric_names = list(report["keras_metrics"])
    lines = [
        f"# {report['recipe']} export, version {report.get('version', '?')}: {verdict}",
        "",
        f"Trained under {report['trained_backend']}; converted with the "
        f"{report['converted_with']}. Parity on {report['test_examples']} test examples, "
        "fed from raw inputs through the exported preprocessing.",
        "",
        "| format | size | passed | max abs diff | " + " | ".join(metric_names)
        + " | top-1 agreement | rule |",
        "|---|---|---|---|" + "---|" * len(metric_names) + "---|---|",
        f"| keras | {_size(report['keras_size_bytes'])} | reference | 0 | "
        + " | ".join(f"{report['keras_metrics'][m]:.4f}" for m in metric_names) + " | 1.000 | |",
    ]
    for name, check in report["formats"].items():
        agreement = check.get("top1_agreement")
        lines.append(
            f"| {name} | {_size(check['size_bytes'])} | {'yes' if check['passed'] else 'NO'} | "
            f"{check['max_abs_difference']:.2e} | "
            + " | ".join(f"{check['metrics'][m]:.4f}" for m in metric_names)
            + f" | {'' if agreement is None else f'{agreement:.3f}'} | {check['rule']} |"
        )
    lines += ["", "Latency: median ms; batch 1 takes test examples one at a time, as requests come. "
                  "Threads: the runtime's thread count, the faster of those timed at batch 1 "
                  "(kept for loading and serving the artifact). Server batch: the batch size "
                  "timed fastest per example when smaller than 32 (the server batches no more).", "",
              "| runtime | batch 1 (ms) | batch 32 (ms) | threads | server batch |", "|---|---|---|---|---|"]
    for name, timing in report["latency_ms"].items():
        lines.append(f"| {name} | {timing['batch_1_ms']:.2f} | {timing['batch_32_ms']:.2f} | "
                     f"{_threads(timing)} | {_server_batch(timing)} |")
    fastest = report.get("fastest")
    if fastest:
        lines += ["", f"Fastest format that passed the gate: {fastest['format']} "
                      f"({fastest['batch_1_ms']:.2f} ms at batch 1)."]
    elif "fastest" in report:
        lines += ["", "No format passed the gate with a latency: none to serve."]
    busiest = report.get("highest_throughput")
    if busiest:
        lines += ["", f"Most examples per second among them: {busiest['format']} "
                      f"({busiest['ms_per_example']:.3g} ms per example at batch {busiest['batch_size']}; "
                      "`serve --format throughput`)."]
    notes = [f"- {name}: int8 with float fallback ({check['float_fallback_reason']})"
             for name, check in report["formats"].items() if check.get("integer_only") is False]
    notes += [f"- {name}: {_raw_signature_line(check)}" for name, check in report["formats"].items()
              if "raw_signature" in check]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _server_batch(timing: dict) -> str:
    if "ms_per_example" not in timing:
        return ""  # the Keras contenders, or a report written before the sizes were timed
    return str(timing.get("best_batch_size") or "any")


def _raw_signature_line(check: dict) -> str:
    """How the SavedModel's raw-input signature did in the gate, in one line."""
    raw = check["raw_signature"]
    inputs = ", ".join(check.get("signatures", {}).get("serving_default", []))
    said = f"its raw-input signature `serving_default` (inputs: {inputs})"
    if not raw.get("checked", True):
        return f"{said} was not fed the test examples: {raw['reason']}"
    if "max_abs_difference" not in raw:
        return f"{said} FAILED on the test examples: {raw['reason']}"
    verdict = "passed" if raw["passed"] else "FAILED"
    return (f"{said} was fed the same test examples raw and {verdict} (max abs diff "
            f"{raw['max_abs_difference']:.2e}); `model_inputs` takes the model's own inputs")


def _threads(timing: dict) -> str:
    """The threads cell: the chosen count and each count's batch-1 time, e.g. "2 (1: 4.02 ms, 2: 3.64 ms)"."""
    if "threads" not in timing:
        return ""
    tried = ", ".join(f"{n}: {ms:.2f} ms" for n, ms in timing.get("batch_1_ms_by_threads", {}).items())
    return f"{timing['threads']} ({tried})" if tried else str(timing["threads"])
