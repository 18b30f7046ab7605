"""The FORMATS table: every entry complete and consistent, names and files round-trip."""

import subprocess
import sys

import pytest

from dlkeras import export
from dlkeras.errors import ConfigError, RunError
from dlkeras.export import runtimes
from dlkeras.export.formats import ARTIFACTS, FORMATS, KERAS


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_file_name_maps_back_to_its_format(name, tmp_path):
    entry = ARTIFACTS[name]
    path = tmp_path / entry.file_name
    if entry.directory:
        path.mkdir()
    else:
        path.write_bytes(b"")
    assert entry.name == name
    assert runtimes.format_of(path) == name


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_export_format_is_complete(name):
    entry = FORMATS[name]
    assert callable(entry.converter) and callable(entry.loader)
    if entry.converts_from:  # sources are listed (and so written) first
        assert list(FORMATS).index(entry.converts_from) < list(FORMATS).index(name)
    assert entry.file_name != KERAS.file_name


def test_keras_is_loadable_but_not_an_export_choice():
    assert KERAS.name in ARTIFACTS and KERAS.name not in FORMATS
    assert KERAS.converter is None
    with pytest.raises(ConfigError, match=r"unknown export format\(s\) \['keras'\].*always written"):
        export.check_formats(["keras"])


def test_check_formats_orders_and_adds_sources():
    assert export.check_formats(["onnx", "tflite_int8"]) == ["saved_model", "tflite_int8", "onnx"]
    assert export.check_formats(["onnx"]) == ["onnx"]
    assert export.check_formats(list(reversed(FORMATS))) == list(FORMATS)
    with pytest.raises(ConfigError, match=r"coreml.*choose from \['saved_model', 'tflite'"):
        export.check_formats(["saved_model", "coreml"])


def test_unknown_artifact_names_the_kinds_it_knows(tmp_path):
    with pytest.raises(RunError, match=r"model\.bin: unknown artifact type; expected a \.keras, \.tflite, "
                                       r"\.onnx file or a saved_model folder"):
        runtimes.format_of(tmp_path / "model.bin")


def test_the_table_imports_no_framework():
    code = "import sys\nfrom dlkeras.export import formats, runtimes\nprint(*sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = set(result.stdout.split())
    assert result.returncode == 0 and "dlkeras.export.formats" in loaded, result.stderr
    assert not loaded & {"tensorflow", "keras", "jax", "torch", "onnxruntime", "ai_edge_litert"}


def test_help_lists_the_table(cli):
    result = cli(["--help"], module="dlkeras.export")
    assert result.returncode == 0
    assert ",".join(FORMATS) in "".join(result.stdout.split())
