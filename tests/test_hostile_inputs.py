"""Hostile and broken inputs, one corpus: each gets one `error:` line (exit 2) or a note.

A refused case must print one `error: ...` line naming the problem and the fix, exit with
status 2, show no traceback, write nothing (no run directory, no output file) and run no code
from the input. An accepted case (a few bad files in a large folder, a huge text) must finish
with a note saying what was skipped or cut. Adding a case is one entry in `CASES`:

    Case(name, command, make_input, expected words[, status])

`make_input(folder, assets)` writes the input under `folder` and returns the command's
arguments; the runner adds `--out`/`--output` under `folder/out` and checks it stays empty.
Commands run in-process (`main(argv)`, well under a second each once Keras is imported);
`test_the_command_line_exits_2_too` runs one case through `python -m` for the real exit status.
"""

from __future__ import annotations

import importlib
import io
import json
import pickle
import struct
import sys
import traceback
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dlkeras import config

COMMANDS = {  # command -> (module with main(argv), the option naming what it writes, where)
    "train": ("dlkeras.train", "--out", "out"),
    "predict": ("dlkeras.predict", "--output", "out/predictions.csv"),
    "export": ("dlkeras.export.__main__", "--out", "out"),
}
TABULAR = {"task": "classification", "class_names": ["no", "yes"], "kind": "tabular",
           "label_column": "churn", "numeric": {"tenure": [30.0, 20.0], "charges": [60.0, 20.0]},
           "categorical": {"contract": ["monthly", "two-year", "yearly"]}}
IMAGE_FOLDER = {"task": "classification", "class_names": ["dent", "ok"], "kind": "image_folder",
                "image_size": 8}
IMAGES = {"task": "classification", "class_names": ["0", "1"], "kind": "images", "scale": 255.0,
          "input_shape": [8, 8, 1]}
KINDS = {"tabular": ("mlp_churn", TABULAR), "image_folder": ("effnet_defects", IMAGE_FOLDER),
         "images": ("cnn_digits", IMAGES)}  # kind of a fake run -> its recipe, its preprocessing


# === Assets: built once per module ===


@dataclass
class Assets:
    """Model files (bytes), image files, and the file hostile code would create."""

    models: dict[str, bytes]
    bomb_png: bytes  # valid, 30000 x 30000 pixels
    good_png: bytes
    marker: Path


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    import keras

    root = tmp_path_factory.mktemp("assets")
    marker = root / "code_ran"

    def classifier(name, shape, hidden=None):
        inputs = keras.Input(shape, name="features")
        flat = keras.layers.Flatten(name="flatten")(hidden(inputs) if hidden else inputs)
        outputs = keras.layers.Dense(2, activation="softmax", name="head")(flat)
        keras.Model(inputs, outputs, name=name).save(root / f"{name}.keras")
        return (root / f"{name}.keras").read_bytes()

    # the lambda creates the marker whenever it runs: once while the model is built (that
    # marker is removed below), and again if any command executed the saved bytecode
    writes_marker = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")
    models = {
        "tabular": classifier("tabular", (5,)),
        "image_folder": classifier("image_folder", (8, 8, 3)),
        "images": classifier("images", (8, 8, 1)),
        "lambda": classifier("with_lambda", (5,), keras.layers.Lambda(writes_marker, name="writes_marker")),
    }
    marker.unlink(missing_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 12, 3), np.uint8)).save(root / "good.png")
    return Assets(models, png_bomb(30_000), (root / "good.png").read_bytes(), marker)


def png_bomb(side: int) -> bytes:
    """A valid all-black 1-bit PNG of side x side pixels: ~110 KB that decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (side + 7) // 8)  # a filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# === Finished runs for predict and export ===


def finished(how: str = "run", model="", kind: str = "tabular", inputs=None, preprocessing=None,
             raw: str | bytes = ""):
    """A complete (tiny, fake) finished run: `predict --run`, `predict --artifact` (the run
    folder stands for an export folder: model.keras + preprocessing.json) or `export --run`.

    Args:
        model: a key of `assets.models` (default: the kind's) or (folder, assets) -> bytes.
        inputs: (folder, assets) -> predict's input arguments (default: two table rows).
        preprocessing: replaces the kind's preprocessing.json; `raw` replaces its content.
    """
    def make(folder: Path, assets: Assets) -> list[str]:
        run = folder / "run"
        run.mkdir()
        recipe, default = KINDS[kind]
        (run / "recipe.json").write_text(json.dumps(config.to_dict(config.load_recipe(recipe))))
        (run / "env.json").write_text(json.dumps({"backend": "tensorflow"}))
        text = raw or json.dumps(preprocessing or default)
        (run / "preprocessing.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        data = model(folder, assets) if callable(model) else assets.models[model or kind]
        (run / "model.keras").write_bytes(data)
        if how == "export":
            return ["--run", str(run), "--formats", "onnx"]
        source = ["--run", str(run)] if how == "run" else ["--artifact", str(run / "model.keras")]
        return [*source, *(inputs(folder, assets) if inputs else ["--input", str(rows(folder))])]
    return make


def tampered(**changes):
    """A tabular run whose preprocessing.json has fields replaced (None removes one)."""
    return finished(preprocessing={k: v for k, v in {**TABULAR, **changes}.items() if v is not None})


def rows(folder: Path, encoding: str = "utf-8", **columns) -> Path:
    """Two table rows for the tabular run; `columns` replaces some."""
    frame = pd.DataFrame({"tenure": [3, 40], "charges": [70.5, 20.0], "contract": ["monthly", "yearly"]})
    path = folder / "rows.csv"
    path.write_bytes(frame.assign(**columns).to_csv(index=False).encode(encoding))
    return path


def table_input(encoding: str = "utf-8", **columns):
    return lambda folder, assets: ["--input", str(rows(folder, encoding, **columns))]


def image(write, name: str = "input.png"):
    """Predict arguments: one image file, written by `write(path, assets)`."""
    def inputs(folder, assets):
        write(folder / name, assets)
        return [str(folder / name)]
    return inputs


# === Files: (path, assets) -> None ===


def bomb(path: Path, assets: Assets):
    path.write_bytes(assets.bomb_png)


def bomb_100mpx(path: Path, assets: Assets):  # between Pillow's warning and its own error
    path.write_bytes(png_bomb(10_000))


def truncated_png(path: Path, assets: Assets):
    path.write_bytes(assets.good_png[: len(assets.good_png) // 2])


def truncated_jpeg(path: Path, assets: Assets):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(
        buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[:1500])


def link_to_device(path: Path, assets: Assets):
    path.symlink_to("/dev/zero")


# === Model archives: (folder, assets) -> bytes ===


def random_bytes(folder, assets):
    return np.random.default_rng(0).bytes(2000)


def truncated_model(folder, assets):
    return assets.models["tabular"][: len(assets.models["tabular"]) // 2]


def extra(members: dict[str, bytes], declared: dict[str, int] | None = None):
    """The tabular model's archive plus `members`; `declared` overrides their declared sizes."""
    def model(folder, assets):
        path = folder / "hostile.keras"
        path.write_bytes(assets.models["tabular"])
        add_members(path, members, declared)
        return path.read_bytes()
    return model


def add_members(path: Path, members: dict[str, bytes], declared: dict[str, int] | None) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        for name, data in members.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    declare_sizes(path, declared or {})


def declare_sizes(path: Path, sizes: dict[str, int]) -> None:
    """Rewrites members' uncompressed sizes in the zip headers (nothing is compressed)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offsets = {info.filename: info.header_offset for info in archive.infolist()}
    for name, size in sizes.items():
        struct.pack_into("<I", data, offsets[name] + 22, size)  # the local header
        entry = data.find(b"PK\x01\x02")
        while entry != -1:  # the central directory, which zipfile reads
            length = struct.unpack_from("<H", data, entry + 28)[0]
            if data[entry + 46 : entry + 46 + length].decode() == name:
                struct.pack_into("<I", data, entry + 24, size)
            entry = data.find(b"PK\x01\x02", entry + 4)
    path.write_bytes(bytes(data))


def unknown_class(folder, assets):
    """The tabular model with its Dense layer renamed to a class from `evil_layers`, a module
    in `folder` (on sys.path during the case) that creates the marker when imported."""
    (folder / "evil_layers.py").write_text(f"open({str(assets.marker)!r}, 'w').close()\n")
    with zipfile.ZipFile(io.BytesIO(assets.models["tabular"])) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    model_config = json.loads(members["config.json"])
    for layer in model_config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer.update(module="evil_layers", class_name="EvilDense",
                         registered_name="evil_layers>EvilDense")
    members["config.json"] = json.dumps(model_config).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# === Training data: (folder, assets) -> data.path ===


def train(recipe: str, data, *overrides: str, dry_run: bool = False):
    """`train --recipe RECIPE` with its SMOKE overrides, `overrides` and data.path=`data(...)`;
    `dry_run` checks the data and the model and writes nothing."""
    def make(folder, assets):
        settings = [*config.load_recipe_module(recipe).SMOKE, *overrides,
                    f"data.cache_dir={folder / 'cache'}", f"data.path={data(folder, assets)}"]
        return ["--recipe", recipe, *[a for s in settings for a in ("--set", s)],
                *(["--dry-run"] if dry_run else [])]
    return make


def check_images(data, *overrides: str):  # the image-folder recipe, data checked only
    return train("effnet_defects", data, "data.image_size=16", "data.max_examples=0", *overrides,
                 dry_run=True)


def check_texts(data):  # the text recipe, data checked only
    return train("bert_tickets", data, *TEXT_COLUMNS, dry_run=True)


def image_folder(*writers, good: int = 0, links: bool = False):
    """Classes dent/ok with `good` readable images each, plus one file per writer; `links` adds
    symbolic links to an image and a folder outside, and a link loop."""
    def data(folder, assets):
        root = folder / "images"
        for shade, label in ((0, "dent"), (100, "ok")):
            (root / label).mkdir(parents=True)
            for number in range(good):
                save_png(root / label / f"{number}.png", shade + 20 * number)
        for number, write in enumerate(writers):
            write(root / ("dent", "ok")[number % 2] / f"bad{number}.png", assets)
        if links:
            (folder / "shared").mkdir()
            for number in range(4):
                save_png(folder / "shared" / f"s{number}.png", 200 + number)
            (root / "ok" / "far.png").symlink_to(folder / "shared" / "s3.png")
            (root / "dent" / "more").symlink_to(folder / "shared")  # 4 files, one also linked
            (root / "ok" / "loop").symlink_to(root / "ok")  # must not be walked forever
        return root
    return data


def save_png(path: Path, shade: int):
    Image.fromarray(np.full((12, 12, 3), shade, np.uint8)).save(path)


def text_file(name: str, text, encoding: str = "utf-8"):
    """`text` (or what `text()` returns, made only when the case runs) written to `name`."""
    def data(folder, assets):
        (folder / name).write_bytes((text() if callable(text) else text).encode(encoding))
        return folder / name
    return data


def churn_table(**cells) -> str:
    """60 churn rows; `cells` sets column=(row, value)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 72, 60).astype(object),
        "charges": rng.normal(60, 20, 60).round(2),
        "contract": rng.choice(["monthly", "yearly", "two-year"], 60),
        "churn": ["yes", "no"] * 30,
    })
    for column, (row, value) in cells.items():
        frame.loc[row, column] = value
    return frame.to_csv(index=False)


def tickets(long_row: int = -1, characters: int = 0, accent: bool = False) -> str:
    """60 tickets (body, queue); one of `characters` characters at `long_row` (file row + 2)."""
    words = "late delayed refund bag crew seat wifi gate".split()
    rng = np.random.default_rng(0)
    bodies = [" ".join(rng.choice(words, 10)) + f" ticket {i}" for i in range(60)]
    if long_row >= 0:
        bodies[long_row] = " ".join(rng.choice(words, characters // 5 + 1))[:characters]
    if accent:
        bodies[1] = "caf\u00e9 " + bodies[1]
    return pd.DataFrame({"body": bodies, "queue": ["billing", "baggage"] * 30}).to_csv(index=False)


def npz(**arrays):
    """An .npz of `arrays` (NumPy pickles object arrays)."""
    def data(folder, assets):
        np.savez(folder / "digits.npz", **arrays)
        return folder / "digits.npz"
    return data


def npz_with(members: dict[str, bytes], declared: dict[str, int] | None = None):
    """A good digits .npz plus `members` (declared sizes overridden by `declared`)."""
    def data(folder, assets):
        path = npz(images=PIXELS, labels=LABELS)(folder, assets)
        add_members(path, members, declared)
        return path
    return data


def written(name: str, write: Callable[[Path], object]):
    def data(folder, assets):
        write(folder / name)
        return folder / name
    return data


TEXT_COLUMNS = ("data.text_column=body", "data.label_column=queue", "data.max_examples=0")
FOLDER = "image_folder"
PIXELS, LABELS = np.zeros((4, 8, 8), np.uint8), np.array([0, 1, 0, 1])
GIB3 = 3 << 30
LATIN1_CHURN = text_file("churn.csv", "tenure,contract,churn\n3,monthly,yes\n4,caf\u00e9,no\n", "latin-1")


def digits(data):  # the digits recipe on a user .npz
    return train("cnn_digits", data, "data.max_examples=0")


def churn(data):  # the table recipe on a user CSV
    return train("mlp_churn", data, "data.label_column=churn")


def IMAGE_SIZE(value):  # noqa: N802 (reads as a constant in the table)
    return {**IMAGE_FOLDER, "image_size": value}


# === The corpus ===


@dataclass(frozen=True)
class Case:
    """One hostile input: the command, how to make its input, the words the output must hold,
    and the exit status (2: refused with an `error:` line; 0: accepted, with a note)."""

    name: str
    command: str
    make: Callable[[Path, Assets], list[str]]
    expected: str
    status: int = 2


CODE = "model.keras holds Lambda layer(s) writes_marker, and dlkeras never loads code"
UNKNOWN = "uses layer class(es) 'EvilDense' that neither Keras nor dlkeras defines"
CORRUPT = "model.keras is corrupt, truncated or not a dlkeras model"
OUTSIDE = "is a zip archive with member path(s) outside the archive"
ZIP_BOMB = "a possible decompression bomb, so nothing was decompressed"
IMAGE_BOMB = "decompression bomb: declares 900,000,000 pixels, more than 89,478,485; never decoded"
TAMPERED = "it was damaged or edited: train the run again"
NOT_UTF8 = "which is not UTF-8; dlkeras reads text files as UTF-8, so save it as UTF-8"
PICKLED = "holds Python objects (object arrays, stored with pickle), and dlkeras never unpickles"
CASES = [
    # 1. model files holding code, or naming classes nothing defines
    Case("lambda_predict_run", "predict", finished(model="lambda"), CODE),
    Case("lambda_predict_artifact", "predict", finished("artifact", "lambda"), CODE),
    Case("lambda_export", "export", finished("export", "lambda"), CODE),
    Case("unknown_class_predict", "predict", finished(model=unknown_class), UNKNOWN),
    Case("unknown_class_export", "export", finished("export", unknown_class), UNKNOWN),
    Case("random_bytes_predict_run", "predict", finished(model=random_bytes), CORRUPT),
    Case("random_bytes_predict_artifact", "predict", finished("artifact", random_bytes), CORRUPT),
    Case("random_bytes_export", "export", finished("export", random_bytes), CORRUPT),
    Case("truncated_model", "predict", finished(model=truncated_model), CORRUPT),
    # 2. hostile zip archives: path traversal, decompression bombs
    Case("model_dotdot_member", "predict", finished(model=extra({"../escaped.txt": b"x"})), OUTSIDE),
    Case("model_absolute_member", "predict", finished(model=extra({"/tmp/escaped.txt": b"x"})), OUTSIDE),
    Case("model_dotdot_export", "export", finished("export", extra({"assets/../../x": b"x"})), OUTSIDE),
    Case("model_zip_bomb", "predict", finished("artifact", extra({"p": bytes(99)}, {"p": GIB3})), ZIP_BOMB),
    Case("npz_zip_bomb", "train", digits(npz_with({"pad.npy": bytes(99)}, {"pad.npy": GIB3})), ZIP_BOMB),
    Case("npz_dotdot_member", "train", digits(npz_with({"../x.npy": b"x"})), OUTSIDE),
    # 3. a tampered preprocessing.json (run folder, or export folder through --artifact)
    Case("preprocessing_not_json", "predict", finished(raw='{"kind": "tabular",'), "is not valid JSON"),
    Case("preprocessing_a_list", "predict", finished(raw="[1, 2]"), "must hold a JSON object, found list"),
    Case("preprocessing_unknown_kind", "predict", tampered(kind="pickle"), 'unknown data kind "pickle"'),
    Case("preprocessing_kind_number", "predict", tampered(kind=3), "unknown data kind 3"),
    Case("preprocessing_kind_list", "predict", tampered(kind=["tabular"]), 'unknown data kind ["tabular"]'),
    Case("preprocessing_deep_nesting", "predict", finished(raw="[" * 100_000), "is not valid JSON"),
    Case("preprocessing_not_utf8", "predict", finished(raw=b'{"kind": "caf\xe9"}'), "is not valid JSON"),
    Case("preprocessing_missing_key", "predict", tampered(numeric=None), "needs field 'numeric', which is"),
    Case("preprocessing_scaler_text", "predict", tampered(numeric={"a": "thirty"}), "field 'numeric' must"),
    Case("preprocessing_zero_std", "predict", tampered(numeric={"tenure": [1, 0]}), "[mean, non-zero std]"),
    Case("preprocessing_class_names", "predict", tampered(class_names="no,yes"), "'class_names' must be"),
    Case("preprocessing_wrong_task", "predict", tampered(task="forecast"), "does not fit kind 'tabular'"),
    Case("preprocessing_image_size_text", "predict", finished(kind=FOLDER, preprocessing=IMAGE_SIZE("big")),
         "field 'image_size' must be a whole number from 1 to 4096, found \"big\""),
    Case("preprocessing_image_size_huge", "predict", finished(kind=FOLDER, preprocessing=IMAGE_SIZE(10**9)),
         "from 1 to 4096"),
    Case("preprocessing_export_folder", "predict",
         finished("artifact", preprocessing={**TABULAR, "categorical": [1]}), TAMPERED),
    # 4. image decompression bombs and truncated images, in predict inputs and image folders
    Case("predict_image_bomb", "predict", finished(kind=FOLDER, inputs=image(bomb)), IMAGE_BOMB),
    Case("predict_image_bomb_100mpx", "predict", finished(kind=FOLDER, inputs=image(bomb_100mpx)),
         "declares 100,000,000 (10000x10000) pixels"),
    Case("predict_digits_bomb", "predict", finished(kind="images", inputs=image(bomb)), IMAGE_BOMB),
    Case("predict_truncated_png", "predict", finished(kind=FOLDER, inputs=image(truncated_png)),
         "input.png: corrupt or truncated image"),
    Case("predict_truncated_jpeg", "predict", finished(kind=FOLDER, inputs=image(truncated_jpeg, "in.jpg")),
         "in.jpg: corrupt or truncated image"),
    Case("train_only_bad_images", "train", check_images(image_folder(bomb, truncated_png, link_to_device)),
         "has no readable images"),
    Case("train_some_bad_images", "train", check_images(image_folder(bomb, truncated_png, good=6)),
         "skipped 2 unreadable file(s): ", status=0),
    # 5. non-UTF-8 text and mixed-type columns
    Case("train_latin1_csv", "train", churn(LATIN1_CHURN), f"line 3 holds byte 0xe9, {NOT_UTF8}"),
    Case("train_utf16_csv", "train", churn(text_file("c.csv", "tenure,churn\n3,yes\n", "utf-16")),
         "line 1 holds byte 0xff, which is not UTF-8"),
    Case("train_latin1_text", "train", check_texts(text_file("t.csv", tickets(accent=True), "latin-1")),
         NOT_UTF8),
    Case("train_csv_is_a_device", "train", churn(written("c.csv", lambda p: p.symlink_to("/dev/zero"))),
         "c.csv is not a regular file (a folder, device or pipe)"),
    Case("train_mixed_column", "train", churn(text_file("c.csv", churn_table(tenure=(7, "?")))),
         "column 'tenure' mixes numbers with text (file rows 9, e.g. '?')"),
    Case("predict_mixed_column", "predict", finished(inputs=table_input(tenure=["3", "three"])),
         "column 'tenure' holds values that are not numbers (file rows 3, e.g. 'three')"),
    Case("predict_latin1_rows", "predict", finished(inputs=table_input("latin-1", contract=["\u00e9", "x"])),
         NOT_UTF8),
    # 6. a 10 MB text, cut to MAX_TEXT_CHARACTERS with a note
    Case("train_10mb_text", "train", check_texts(text_file("t.csv", lambda: tickets(4, 10_000_000))),
         "1 text(s) longer than 100,000 characters (file rows 6) were cut", status=0),
    # 7. symbolic links: followed (outside ones reported), regular files only, loops end
    Case("train_links_outside", "train", check_images(image_folder(good=4, links=True)),
         "5 file(s) are symbolic links to files outside", status=0),
    Case("train_link_to_device", "train", check_images(image_folder(link_to_device, good=4)),
         "bad0.png (not a regular file)", status=0),
    Case("predict_link_to_device", "predict", finished(kind=FOLDER, inputs=image(link_to_device)),
         "input.png: not a regular file"),
    # 8. .npz files that are not plain arrays
    Case("npz_pickled_images", "train", digits(npz(images=np.array([PIXELS[0], "x"], object), labels=[0, 1])),
         PICKLED),
    Case("npz_pickled_labels", "train", digits(npz(images=PIXELS, labels=np.array([0, "a", None, 1], "O"))),
         PICKLED),
    Case("npz_is_a_pickle", "train", digits(written("d.npz", lambda p: p.write_bytes(pickle.dumps([1])))),
         "d.npz: not a readable .npz archive (it is not a zip file"),
    Case("npz_is_npy", "train", digits(written("d.npy", lambda p: np.save(p, PIXELS))),
         "d.npy: not a readable .npz archive (it is not a zip file"),
    Case("npz_text_images", "train", digits(npz(images=np.full((4, 8, 8), "a"), labels=LABELS)),
         "'images' must hold numbers"),
]


@pytest.fixture(autouse=True)
def tensorflow_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # export sets it; restored afterwards


def run_command(command: str, arguments: list[str], capsys) -> tuple[int, str, str]:
    """(status, stdout, stderr) of `main(arguments)`; an escaping exception fails the test."""
    module = importlib.import_module(COMMANDS[command][0])
    try:
        status = module.main(arguments)
    except SystemExit as exit_:  # argparse
        status = exit_.code
    except BaseException:
        pytest.fail(f"Traceback instead of an error line:\n{traceback.format_exc()}")
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_input(case: Case, assets: Assets, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))  # the input's modules are importable: none may run
    arguments = case.make(tmp_path, assets)
    capsys.readouterr()
    _, option, target = COMMANDS[case.command]
    status, out, err = run_command(case.command, [*arguments, option, str(tmp_path / target)], capsys)

    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    if case.status == 2:
        assert status == 2, (out + err)[-3000:]
        assert len(errors) == 1, err[-3000:]
        assert case.expected in errors[0], errors[0]
        assert ";" in errors[0] or ". " in errors[0], f"no fix named: {errors[0]}"
    else:
        assert status == 0 and not errors, (out + err)[-3000:]
        assert case.expected in out, out[-3000:]
    out_folder = tmp_path / "out"
    assert not out_folder.exists() or not any(out_folder.rglob("*")), sorted(out_folder.rglob("*"))
    assert not assets.marker.exists(), "code from the input ran"
    assert "evil_layers" not in sys.modules
    assert not list(tmp_path.parent.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()


def test_the_command_line_exits_2_too(assets: Assets, tmp_path: Path, cli):
    """One case through `python -m dlkeras.predict`: the process's status and its stderr."""
    arguments = finished("artifact", "lambda")(tmp_path, assets)
    result = cli([*arguments, "--output", str(tmp_path / "out.csv")], module="dlkeras.predict",
                 env={"KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and CODE in errors[0], result.stderr[-3000:]
    assert not (tmp_path / "out.csv").exists() and not assets.marker.exists()


def test_an_image_bomb_is_refused_from_its_header_alone(assets: Assets, tmp_path: Path):
    """The 30000 x 30000 bomb is a valid PNG; open_image answers without decoding a pixel."""
    from dlkeras.data import image_decode

    (tmp_path / "bomb.png").write_bytes(assets.bomb_png)
    image, reason = image_decode.open_image(tmp_path / "bomb.png")
    assert image is None and reason.startswith(IMAGE_BOMB)


def test_a_10mb_text_to_predict_is_cut_before_tokenizing():
    import time

    from dlkeras.data import text

    convert = text.build_raw_converter({"preset": "tiny_bert_random", "sequence_length": 16})
    started = time.perf_counter()
    batch = convert(["late " * 2_000_000, "refund please"])
    assert batch["token_ids"].shape == (2, 16) and time.perf_counter() - started < 10
