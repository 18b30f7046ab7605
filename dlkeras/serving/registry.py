"""The models a server answers with: found in a folder of exports, loaded in their formats' runtimes.

    saved_models/                 a folder of recipes: every recipe's models
        mlp_churn/                one recipe's folder: its versions
            3/                    one version folder: model.onnx, preprocessing.json, ...
            4-failed/             failed the parity gate: never served
            .5.partial/           an export in progress: never served

A model's name is its recipe's folder name and its version the folder's number, as TensorFlow
Serving names them. Only the latest version of each model is loaded unless every version is
asked for. The format is chosen per version: a named one, or the fastest format that passed the
parity gate by the latency table of its export_report.json (at batch 1, or per example at the
best batch size for "throughput").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dlkeras.errors import RunError
from dlkeras.serving.instances import CODECS, Codec, Scratch
from dlkeras.serving.request import RequestError

VERSION = re.compile(r"^\d+$")
FASTEST = "fastest"  # the gated format with the lowest batch-1 latency
THROUGHPUT = "throughput"  # the gated format with the most examples per second


@dataclass(frozen=True)
class Found:
    """One version folder to serve."""

    name: str
    version: int
    folder: Path


@dataclass
class ServedModel:
    """One version of one model, loaded and ready to answer raw inputs.

    Attributes:
        format: the artifact format it answers with (`export.formats.ARTIFACTS`).
        path: the artifact's file (or folder).
        loaded: the artifact with its preprocessing (`export.artifacts.LoadedModel`).
        convert: raw inputs -> model inputs (the data kind's converter); None for forecasts.
        codec: how its data kind's instances are decoded and answered.
        batch_size: the batch size its export timed fastest per example, when smaller than the
            largest it timed (`export.artifacts.recorded_batch_size`); None: no limit of its own.
    """

    name: str
    version: int
    format: str
    path: Path
    loaded: object
    convert: object
    codec: Codec
    batch_size: int | None = None

    @property
    def preprocessing(self) -> dict:
        return self.loaded.preprocessing

    @property
    def task(self) -> str:
        return self.loaded.task

    def predict(self, inputs):
        return self.loaded.predict(inputs)

    def answer(self, raw_inputs: list) -> list[dict]:
        """Predictions for a batch of decoded instances (runs in the model's worker thread)."""
        return self.codec.predict(self, raw_inputs)


class Registry:
    """The served models by name and version."""

    def __init__(self, models: list[ServedModel]):
        self.models: dict[str, dict[int, ServedModel]] = {}
        for model in models:
            self.models.setdefault(model.name, {})[model.version] = model

    def __iter__(self):
        return (model for versions in self.models.values() for model in versions.values())

    def versions(self, name: str) -> dict[int, ServedModel]:
        """Every loaded version of `name`.

        Raises:
            RequestError: 404 when no model has that name.
        """
        if name not in self.models:
            raise RequestError(f"no model named {name!r}; this server serves {sorted(self.models)}",
                               status=404)
        return self.models[name]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """Version `version` of `name`, or its latest version.

        Raises:
            RequestError: 404 for an unknown name or a version not loaded; 400 for a version
                that is not a number.
        """
        versions = self.versions(name)
        if version is None:
            return versions[max(versions)]
        if not VERSION.match(version):
            raise RequestError(f"version {version!r} is not a whole number; ask for one of "
                               f"{sorted(versions)}, e.g. /v1/models/{name}/versions/{max(versions)}")
        if int(version) not in versions:
            raise RequestError(f"model {name!r} has no version {int(version)} loaded; loaded: "
                               f"{sorted(versions)} (start the server with --all-versions to serve "
                               "every exported version)", status=404)
        return versions[int(version)]


# === Finding and loading ===


def discover(root: Path, all_versions: bool = False) -> tuple[list[Found], list[str]]:
    """The version folders under `root` to serve, and notes on folders left out.

    Args:
        root: a folder of recipes, one recipe's folder, or one version folder.
        all_versions: every complete version, not only the latest of each model.

    Raises:
        RunError: `root` is not a folder, or holds no exported model.
    """
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{root} is not a folder; pass saved_models/ (recipes and their versions), "
                       "one recipe's folder, or one version folder")
    if (root / "preprocessing.json").is_file():  # one version folder
        numbered = bool(VERSION.match(root.resolve().name))
        name = root.resolve().parent.name if numbered else root.resolve().name
        return [Found(name, int(root.resolve().name) if numbered else 1, root)], []
    notes: list[str] = []
    found = _versions(root, all_versions, notes)
    if not found:
        for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found += _versions(child, all_versions, notes)
    if not found:
        raise RunError(f"{root} holds no exported model (<recipe>/<version>/ folders with "
                       f"preprocessing.json); export one with `python -m dlkeras.export --out {root}`"
                       + ("; " + "; ".join(notes) if notes else ""))
    return found, notes


def _versions(folder: Path, all_versions: bool, notes: list[str]) -> list[Found]:
    numbers = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and VERSION.match(p.name)
                     and (p / "preprocessing.json").is_file())
    failed = [p for p in folder.glob("*-failed") if p.name.split("-")[0].isdigit()
              and int(p.name.split("-")[0]) > max(numbers, default=0)]
    notes += [f"{p} failed the parity gate: not served" for p in sorted(failed)]
    chosen = numbers if all_versions else numbers[-1:]
    return [Found(folder.name, number, folder / str(number)) for number in chosen]


def choose_format(folder: Path, wanted: str) -> tuple[str, Path]:
    """(format name, artifact path) of `wanted` ("fastest", "throughput" or a format name) in `folder`.

    Raises:
        RunError: the folder lacks that format's artifact.
    """
    from dlkeras.export.artifacts import fastest_format
    from dlkeras.export.formats import ARTIFACTS

    by = {FASTEST: "latency", THROUGHPUT: "throughput"}.get(wanted)
    name = fastest_format(folder, by) if by else wanted
    path = folder / ARTIFACTS[name].file_name
    if not path.exists():
        present = [n for n, entry in ARTIFACTS.items() if (folder / entry.file_name).exists()]
        raise RunError(f"{folder} has no {name} artifact ({ARTIFACTS[name].file_name}); it has "
                       f"{present}: choose one of them with --format, or --format fastest")
    return name, path


def load_model(found: Found, wanted: str) -> ServedModel:
    """One version folder in the runtime of the chosen format, with its raw-input converter.

    Raises:
        RunError: the artifact is missing or cannot be loaded.
        DataError: its preprocessing.json is missing or damaged.
    """
    from dlkeras.data import KINDS
    from dlkeras.data.raw import build_converter
    from dlkeras.export import artifacts

    format_name, path = choose_format(found.folder, wanted)
    loaded = artifacts.load_artifact(path)
    kind = loaded.preprocessing["kind"]
    codec = CODECS[kind]
    build = codec.converter or (build_converter if KINDS[kind].raw_inputs else None)
    convert = build(loaded.preprocessing, loaded.folder) if build else None
    model = ServedModel(found.name, found.version, format_name, path, loaded, convert, codec,
                        artifacts.recorded_batch_size(found.folder, format_name))
    warm_up(model)
    return model


def warm_up(model: ServedModel) -> None:
    """Answers the metadata's example instance once, so the first request pays no set-up
    (tokenizer graphs, interpreter tensors); kinds whose example is only a placeholder (images)
    are skipped."""
    example = model.codec.describe(model.preprocessing)["example"]
    scratch = Scratch()
    try:
        model.answer([model.codec.decode(example, "the example", model.preprocessing, scratch)])
    except RequestError:
        pass
    finally:
        scratch.close()


def load_models(root: Path, wanted: str = FASTEST, all_versions: bool = False,
                say=print) -> Registry:
    """Every model to serve under `root`, loaded; `say` reports each one and the notes."""
    found, notes = discover(root, all_versions)
    for note in notes:
        say(f"note: {note}")
    models = []
    for entry in found:
        model = load_model(entry, wanted)
        batches = (f"; batches of at most {model.batch_size}, the size its export timed fastest "
                   "per example" if model.batch_size else "")
        say(f"loaded {model.name} v{model.version}: {model.format} ({model.path}), "
            f"{model.preprocessing['kind']} {model.task}{batches}")
        models.append(model)
    return Registry(models)
