"""Every tf.data pipeline runs with tf.data's autotuning off (`pipeline.dataset_options`):
releasing an autotuned iterator idle for a minute blocked for 22 s (bench/data_autotune.py)."""

import numpy as np
import pandas as pd
from PIL import Image

from dlkeras import config
from dlkeras.data import image_files, pipeline, timeseries


def assert_fixed(dataset):
    options = dataset.options()
    assert options.autotune.enabled is False and options.deterministic is True


def test_array_image_file_and_window_pipelines_are_not_autotuned(tmp_path):
    rows = np.arange(40, dtype=np.float32)
    for training in (True, False):
        assert_fixed(pipeline.make_dataset(rows, rows, 8, training, 0, transform=lambda x: x * 2,
                                           augment=lambda x: x + 1))
    paths = []
    for index in range(4):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(np.full((6, 6, 3), 60 * index, np.uint8)).save(paths[-1])
    settings = config.apply_overrides(config.load_recipe("effnet_defects"),
                                      ["data.image_size=8", "data.batch_size=2"]).data
    images = image_files.make_image_dataset([str(p) for p in paths], np.eye(4, dtype=np.float32),
                                            settings, training=True, seed=0)
    assert_fixed(images)
    assert next(iter(images))[0].shape == (2, 8, 8, 3)

    days = pd.date_range("2024-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": np.arange(100.0)})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    series = timeseries.build(config.DataConfig(
        kind="timeseries", path=str(tmp_path / "sales.csv"), date_column="day",
        target_column="sales", input_days=7, horizon_days=3, batch_size=4), seed=0)
    for dataset in (series.train, series.val, series.test):
        assert_fixed(dataset)

