import numpy as np
import pandas as pd
import pytest

from dlkeras import config, data
from dlkeras.errors import DataError


def tabular_recipe(path, *overrides):
    recipe = config.load_recipe("mlp_churn")
    return config.apply_overrides(recipe, [f"data.path={path}", *overrides])


def build(recipe):
    return data.build(recipe.data, recipe.train.seed)


def test_scaler_statistics_come_from_the_training_split_only(churn_like_csv):
    datasets = build(tabular_recipe(churn_like_csv))
    train_rows = datasets.splits["train"].raw
    stats = datasets.info.preprocessing["numeric"]
    for column in ("tenure", "charges"):
        mean, std = stats[column]
        assert mean == pytest.approx(train_rows[column].mean())
        assert std == pytest.approx(train_rows[column].std(ddof=0))
        everything = pd.read_csv(churn_like_csv)[column]
        assert mean != pytest.approx(everything.mean(), abs=1e-9)
    assert datasets.info.preprocessing["categorical"]["contract"] == sorted(
        train_rows["contract"].astype(str).unique()
    )
    scaled = datasets.splits["train"].x[:, 0]
    assert scaled.mean() == pytest.approx(0, abs=1e-5)


def test_labels_classes_and_weights(churn_like_csv):
    datasets = build(tabular_recipe(churn_like_csv))
    info = datasets.info
    assert info.class_names == ("no", "yes")
    assert info.input_shape == (2 + 3,)
    train_y = datasets.splits["train"].y
    counts = np.bincount(train_y)
    assert info.class_weights[1] * counts[1] == pytest.approx(info.class_weights[0] * counts[0])
    features, labels = next(iter(datasets.train))
    assert features.shape[1] == 5 and labels.shape[1] == 2


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv does not exist.*data\.path"):
        build(tabular_recipe(tmp_path / "nope.csv"))


def test_missing_label_column_lists_existing_columns(churn_like_csv):
    with pytest.raises(DataError, match=r"'label' not found.*'tenure'.*data\.label_column"):
        build(tabular_recipe(churn_like_csv, "data.label_column=label"))


def test_missing_feature_column(churn_like_csv):
    with pytest.raises(DataError, match=r"'income' not found"):
        build(tabular_recipe(churn_like_csv, "data.feature_columns=('tenure', 'income')"))


def test_nan_features_are_reported_with_rows_and_fix(churn_like_csv):
    frame = pd.read_csv(churn_like_csv)
    frame.loc[[3, 7], "charges"] = np.nan
    frame.to_csv(churn_like_csv, index=False)
    with pytest.raises(DataError, match=r"'charges': 2.*rows 5, 9.*data\.missing=drop"):
        build(tabular_recipe(churn_like_csv, "data.missing=error"))
    datasets = build(tabular_recipe(churn_like_csv, "data.missing=drop"))
    assert sum(datasets.info.split_sizes.values()) == len(frame) - 2
    assert "dropped 2 row(s)" in datasets.info.notes[0]


def test_nan_labels_are_reported(churn_like_csv):
    frame = pd.read_csv(churn_like_csv)
    frame.loc[0, "churn"] = np.nan
    frame.to_csv(churn_like_csv, index=False)
    with pytest.raises(DataError, match=r"1 row\(s\) have no value in label column 'churn'.*rows 2"):
        build(tabular_recipe(churn_like_csv))


def test_infinite_values_are_reported(churn_like_csv):
    frame = pd.read_csv(churn_like_csv)
    frame["tenure"] = frame["tenure"].astype(float)
    frame.loc[4, "tenure"] = np.inf
    frame.to_csv(churn_like_csv, index=False)
    with pytest.raises(DataError, match=r"'tenure' holds 1 NaN/infinite"):
        build(tabular_recipe(churn_like_csv))


def test_empty_after_filtering(churn_like_csv):
    frame = pd.read_csv(churn_like_csv)
    frame["charges"] = np.nan
    frame.to_csv(churn_like_csv, index=False)
    with pytest.raises(DataError, match="empty after filtering"):
        build(tabular_recipe(churn_like_csv, "data.missing=drop"))


def test_single_class_is_refused(churn_like_csv):
    frame = pd.read_csv(churn_like_csv)
    frame["churn"] = "no"
    frame.to_csv(churn_like_csv, index=False)
    with pytest.raises(DataError, match="needs at least two"):
        build(tabular_recipe(churn_like_csv))


def test_unsupported_and_corrupt_files(tmp_path):
    odd = tmp_path / "table.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        build(tabular_recipe(odd))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot be read"):
        build(tabular_recipe(broken))


def test_bundled_churn_table_loads():
    recipe = config.load_recipe("mlp_churn")
    datasets = data.build(recipe.data, recipe.train.seed)
    assert sum(datasets.info.split_sizes.values()) == 7043 - 11
    assert datasets.info.class_names == ("No", "Yes")
    churn_share = datasets.splits["train"].y.mean()
    assert 0.25 < churn_share < 0.28


def test_rows_as_dicts_transform_exactly_as_the_frame_does():
    from dlkeras.data.tabular import TabularPreprocessor

    frame = pd.DataFrame({"tenure": [1.0, 30.0, 72.0], "charges": [20.5, 80.0, 110.25],
                          "contract": ["Month", "Year", "Two year"], "senior": [True, False, True]})
    preprocessor = TabularPreprocessor.fit(frame, ["tenure", "charges"], ["contract", "senior"])
    rows = [{"tenure": 5, "charges": "99.5", "contract": "Year", "senior": False},
            {"tenure": 72.0, "charges": 20.5, "contract": "Weekly", "senior": True},  # unseen category
            {"tenure": "0", "charges": 0, "contract": "Month", "senior": True, "extra": "ignored"}]
    frame = pd.DataFrame.from_records(rows).astype({"tenure": float, "charges": float})
    expected = preprocessor.transform(frame)
    got = preprocessor.transform_rows(rows)
    assert got.dtype == np.float32 and got.shape == (3, preprocessor.width)
    np.testing.assert_array_equal(got, expected)
    assert got[1, 2:5].sum() == 0  # "Weekly" is all zeros


def test_rows_as_dicts_with_a_bad_number_are_refused():
    from dlkeras.data.tabular import TabularPreprocessor

    preprocessor = TabularPreprocessor({"tenure": (10.0, 2.0)}, {"contract": ["Month"]})
    for bad in ("many", None, float("inf")):
        with pytest.raises(DataError, match="tenure|not a number|infinite"):
            preprocessor.transform_rows([{"tenure": bad, "contract": "Month"}])
