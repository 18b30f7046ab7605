"""The runtimes that load artifacts (`export.loaders`)."""


def test_both_signatures_of_a_saved_model_share_one_load_until_its_files_change(tmp_path, monkeypatch):
    import os

    import numpy as np
    import tensorflow as tf

    from dlkeras.export import loaders

    module = tf.Module()
    module.scale = tf.Variable(2.0)
    module.serve = tf.function(lambda x: {"output": x * module.scale},
                               input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    folder = tmp_path / "saved_model"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    loads, load = [], tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda path: loads.append(path) or load(path))
    inputs = np.ones((3, 2), np.float32)

    np.testing.assert_array_equal(loaders.load_saved_model(folder)(inputs), 2 * inputs)
    assert loaders.load_saved_model_raw(folder)({"x": inputs})["output"].tolist() == (2 * inputs).tolist()
    assert len(loads) == 1
    index = folder / "variables" / "variables.index"
    os.utime(index, ns=(index.stat().st_atime_ns, index.stat().st_mtime_ns + 10**9))
    loaders.load_saved_model(folder)
    assert len(loads) == 2  # a changed file is read again
