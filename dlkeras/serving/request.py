"""A request body -> the instances to predict, or a RequestError that names the fix.

Bodies follow TensorFlow Serving's REST API:

    {"instances": [x1, x2, ...]}                  row format: one entry per input
    {"inputs": {"name": [a1, a2, ...], ...}}      columnar: each name, one value per input
    {"inputs": [x1, x2, ...]}                     columnar without names: as "instances"

and may name `"signature_name": "serving_default"`. Row requests are answered with
`{"predictions": [...]}`, columnar ones with `{"outputs": {...}}`, as TensorFlow Serving does.
"""

from __future__ import annotations

import difflib
import json

from dlkeras.errors import DlkerasError

FIELDS = ("instances", "inputs", "signature_name")
SIGNATURE = "serving_default"
EXAMPLE = 'send a JSON object such as {"instances": [...]} (one entry per input)'


class RequestError(DlkerasError):
    """A request the server refuses, with its HTTP status and a message saying what to send.

    Attributes:
        status: the HTTP status code (400 bad request, 404 unknown model, 413 body too large).
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


async def read_body(request, limit: int) -> bytes:
    """The request body, read no further than `limit` bytes.

    Raises:
        RequestError: 413 when the body (declared or sent) is larger than `limit`.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, limit: int) -> RequestError:
    return RequestError(f"the request body has {size:,} bytes or more, over the limit of {limit:,}; "
                        "send fewer instances per request (or start the server with a larger "
                        "--max-body-mb)", status=413)


def parse_predict(body: bytes, max_instances: int) -> tuple[list, bool]:
    """(instances, columnar) from a predict request's body.

    Raises:
        RequestError: not JSON, not an object, a missing, unknown or mistyped field, no
            instances, or more than `max_instances`.
    """
    if not body.strip():
        raise RequestError(f"the request body is empty; {EXAMPLE}")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise RequestError(f"the request body is not valid JSON ({reason}); {EXAMPLE}") from None
    if not isinstance(payload, dict):
        raise RequestError(f"the request body is a JSON {json_type(payload)}, not an object; {EXAMPLE}")
    check_fields(payload)
    if "instances" in payload:
        instances, columnar = payload["instances"], False
        if not isinstance(instances, list):
            raise RequestError(f'"instances" must be a list with one entry per input, found a '
                               f"{json_type(instances)}; wrap a single input as [input]")
    else:
        instances, columnar = columns_to_instances(payload["inputs"]), True
    if not instances:
        raise RequestError(f"no instances to predict; {EXAMPLE}")
    if len(instances) > max_instances:
        raise RequestError(f"{len(instances)} instances in one request, more than the limit of "
                           f"{max_instances}; split them over several requests (or start the "
                           "server with a larger --max-instances)")
    return instances, columnar


def check_fields(payload: dict) -> None:
    """RequestError for unknown fields, for both or neither of instances/inputs, a foreign signature."""
    unknown = [key for key in payload if key not in FIELDS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), FIELDS, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise RequestError(f"unknown field(s) {unknown} in the request{hint}; the fields are "
                           f"{list(FIELDS)}")
    if "instances" in payload and "inputs" in payload:
        raise RequestError('send either "instances" (row format) or "inputs" (columnar), not both')
    if "instances" not in payload and "inputs" not in payload:
        raise RequestError(f'the request has no "instances" field; {EXAMPLE}, or {{"inputs": ...}} '
                           "in columnar format")
    signature = payload.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise RequestError(f"unknown signature_name {signature!r}; these models have one signature, "
                           f'"{SIGNATURE}" (or leave the field out)')


def columns_to_instances(inputs) -> list:
    """Columnar inputs -> row instances: {"a": [1, 2], "b": [3, 4]} -> [{"a": 1, "b": 3}, ...]."""
    if isinstance(inputs, list):
        return inputs
    if not isinstance(inputs, dict) or not inputs:
        raise RequestError(f'"inputs" must be an object of name: [one value per input] or a list, '
                           f"found {json_type(inputs)}")
    lengths = {}
    for name, values in inputs.items():
        if not isinstance(values, list):
            raise RequestError(f'"inputs"."{name}" must be a list with one value per input, found a '
                               f"{json_type(values)}")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise RequestError(f'every list in "inputs" needs one value per input, found lengths {lengths}')
    count = next(iter(lengths.values()))
    return [{name: values[i] for name, values in inputs.items()} for i in range(count)]


def instances_to_columns(predictions: list[dict]) -> dict:
    """Row predictions -> columnar outputs: [{"label": "a"}, {"label": "b"}] -> {"label": ["a", "b"]}."""
    return {key: [prediction[key] for prediction in predictions] for key in predictions[0]}


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "number", float: "number", list: "list", dict: "object"}.get(
        type(value), type(value).__name__)
