"""python -m dlkeras.prune: dry run by default; removes only old runs and unusable exports."""

import os
import time

from dlkeras import prune
from dlkeras.export import versions


def make_run(runs, name, finished=True, age=0.0):
    path = runs / name
    path.mkdir(parents=True)
    (path / "recipe.json").write_text("{}")
    if finished:
        (path / "metrics.json").write_text("{}")
    (path / "model.keras").write_bytes(b"x" * 1000)
    stamp = time.time() - age
    os.utime(path / "recipe.json", (stamp, stamp))
    return path


def test_prune_lists_then_removes_only_what_may_go(tmp_path, capsys):
    runs, exports = tmp_path / "runs", tmp_path / "saved_models"
    old = [make_run(runs, f"mlp_churn-20260101-00000{i}", age=100 - i) for i in range(4)]
    unfinished = make_run(runs, "mlp_churn-20260102-000000", finished=False, age=50)
    newest = make_run(runs, "mlp_churn-20260103-000000", age=1)
    linked = make_run(runs, "cnn_digits-20260101-000000", finished=False, age=100)
    other = make_run(runs, "cnn_digits-20260101-000001", age=10)
    (runs / "latest").mkdir()
    (runs / "latest" / "cnn_digits").symlink_to("../" + linked.name)
    search = make_run(runs, "mlp_churn-tune-20260101-000000", age=200)
    for name in ("1", "2-failed", ".3.partial", ".4.partial"):
        (exports / "mlp_churn" / name).mkdir(parents=True)
    running = versions._lock(exports / "mlp_churn" / ".4.partial", wait=True)  # an export at work

    assert prune.main(["--runs", str(runs), "--exports", str(exports), "--keep", "2"]) == 0
    listed = capsys.readouterr().out
    assert "dry run" in listed and all(path.exists() for path in (*old, unfinished))
    expected = {old[0], old[1], old[2], unfinished, exports / "mlp_churn" / "2-failed",
                exports / "mlp_churn" / ".3.partial"}
    assert {path for path in expected if str(path) in listed} == expected

    assert prune.main(["--runs", str(runs), "--exports", str(exports), "--keep", "2", "--apply"]) == 0
    assert not any(path.exists() for path in expected)
    for kept in (old[3], newest, linked, other, search, exports / "mlp_churn" / "1",
                 exports / "mlp_churn" / ".4.partial"):
        assert kept.exists(), kept
    os.close(running)


def test_keep_zero_is_refused(tmp_path, capsys):
    assert prune.main(["--runs", str(tmp_path), "--keep", "0"]) == 2
    assert "error: --keep 0" in capsys.readouterr().err
