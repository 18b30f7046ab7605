"""RunDir: the only code that knows the file names inside a run directory.

    runs/<recipe>-<YYYYmmdd-HHMMSS>/
        recipe.json      the fully resolved recipe, written before training
        env.json         versions, backend, seed, git sha, data fingerprint
        progress.json    finished stages (for --resume)
        budget.json      each stage's length under train.time_budget_minutes (for --resume)
        history.csv      one row per epoch of every stage
        logs/            TensorBoard; logs/projector/ the test embeddings (classification)
        backup/<stage>/  Keras BackupAndRestore state of the running stage (optimizer included)
        checkpoints/     best.keras (best monitored value; kept at the end only when it differs
                         from model.keras), and while the run lasts (or with
                         train.keep_resume_state) <stage>.weights.h5 and backbone_features.npz
                         (pretrained backbones: features of every split)
        model.keras      the final model (no optimizer state)
        metrics.json     test metrics and baselines
        kept_baseline.json  forecasting with train.keep_best_of_baselines: the baseline kept
        intervals.json   forecasting: the served model's interval offsets per horizon day
        preprocessing.json  statistics fit on the training split, for predict/export
        report/          plots and per-class tables; report/index.html all of it on one page
    runs/latest/<recipe>  symlink to the newest run of that recipe

A hyperparameter search (`SearchDir`) lives in runs/<recipe>-tune-<YYYYmmdd-HHMMSS>/ with
runs/latest/<recipe>-tune pointing at the newest search.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from dlkeras import config
from dlkeras.errors import RunError
from dlkeras.io import write_json_atomic

PACKAGES = ("keras", "tensorflow", "keras-hub", "jax", "torch", "numpy", "scikit-learn")


def read_history(path: Path) -> list[dict]:
    """Rows of a history.csv (empty when there is none yet)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    # === Files ===
    @property
    def recipe_json(self) -> Path:
        return self.path / "recipe.json"

    @property
    def env_json(self) -> Path:
        return self.path / "env.json"

    @property
    def progress_json(self) -> Path:
        return self.path / "progress.json"

    @property
    def budget_json(self) -> Path:
        return self.path / "budget.json"

    @property
    def history_csv(self) -> Path:
        return self.path / "history.csv"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def projector_dir(self) -> Path:
        return self.logs_dir / "projector"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints_dir / "best.keras"

    @property
    def backbone_features(self) -> Path:
        return self.checkpoints_dir / "backbone_features.npz"

    def stage_weights(self, stage: str) -> Path:
        return self.checkpoints_dir / f"{stage}.weights.h5"

    def backup_dir(self, stage: str) -> Path:
        return self.path / "backup" / stage

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics_json(self) -> Path:
        return self.path / "metrics.json"

    @property
    def intervals_json(self) -> Path:
        return self.path / "intervals.json"

    @property
    def kept_baseline_json(self) -> Path:
        return self.path / "kept_baseline.json"

    @property
    def preprocessing_json(self) -> Path:
        return self.path / "preprocessing.json"

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    @property
    def report_html(self) -> Path:
        """The whole report on one self-contained page (`tasks.html_report`)."""
        return self.report_dir / "index.html"

    # === Life cycle ===
    @classmethod
    def create(cls, out: Path, recipe: config.Recipe, data_fingerprint: str,
               label: str = "") -> RunDir:
        """Makes a fresh run directory and writes recipe.json and env.json into it.

        Args:
            label: a word between recipe name and time stamp ("tune": runs/<recipe>-tune-...);
                runs/latest/<recipe>-<label> then points at it.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        prefix = f"{recipe.name}-{label}" if label else recipe.name
        try:
            out.mkdir(parents=True, exist_ok=True)
            path = cls._claim(out, f"{prefix}-{stamp}")
        except OSError as error:
            raise RunError(f"cannot create a run directory in {out}: {error}; pass --out DIR") from None
        run = cls(path)
        write_json_atomic(run.recipe_json, config.to_dict(recipe))
        write_json_atomic(run.env_json, environment(recipe, data_fingerprint))
        run.point_latest(out, prefix)
        return run

    @staticmethod
    def _claim(out: Path, name: str) -> Path:
        """Creates out/name, or out/name-2, -3, ...: mkdir is atomic, so two runs started in
        the same second (other processes, other hosts on a shared folder) never share one."""
        suffix = 1
        while True:
            path = out / (name if suffix == 1 else f"{name}-{suffix}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                suffix += 1

    @classmethod
    def find(cls, out: Path, recipe_name: str, where: str) -> RunDir:
        """The run `where` names: a run directory, or "latest" for the recipe's newest run."""
        path = (out / "latest" / recipe_name) if where == "latest" else Path(where)
        if not (path / "recipe.json").is_file():
            raise RunError(
                f"no run to resume at {path}: start one without --resume, "
                f"or pass --resume RUN_DIR naming a directory that holds recipe.json"
            )
        return cls(path.resolve())

    @classmethod
    def load_finished(cls, path: Path) -> tuple[RunDir, config.Recipe]:
        """A finished run (recipe.json, preprocessing.json, model.keras) and its recipe.

        Raises:
            RunError: a file of a finished run is missing.
        """
        run = cls(Path(path).resolve())
        needed = (run.recipe_json, run.preprocessing_json, run.model_file)
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise RunError(
                f"{path} is not a finished run (missing {', '.join(missing)}); train it first, or "
                "pass a directory written by python -m dlkeras.train, e.g. runs/latest/<recipe>"
            )
        return run, config.from_dict(json.loads(run.recipe_json.read_text()))

    def point_latest(self, out: Path, recipe_name: str) -> None:
        """Atomically points runs/latest/<recipe> at this run."""
        link = out / "latest" / recipe_name
        link.parent.mkdir(parents=True, exist_ok=True)
        temp = link.with_name(f".{recipe_name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        temp.symlink_to(os.path.relpath(self.path, link.parent))
        os.replace(temp, link)  # atomic: readers see the old link or the new one, never none

    def check_resumable(self, recipe: config.Recipe, data_fingerprint: str,
                        ignored: tuple[str, ...] = ("tune.",)) -> None:
        """Raises RunError when the recipe or the data changed since the run started.

        Args:
            ignored: key prefixes whose changes do not matter (training ignores `tune`).
        """
        self.check_recipe(recipe, ignored)
        recorded = json.loads(self.env_json.read_text()).get("data_fingerprint")
        if recorded != data_fingerprint:
            raise RunError(
                f"cannot resume {self.path}: the data changed since the run started "
                f"(fingerprint {recorded} then, {data_fingerprint} now). "
                "Restore the original data, or start a new run without --resume."
            )

    def check_recipe(self, recipe: config.Recipe, ignored: tuple[str, ...] = ("tune.",)) -> None:
        """Raises RunError when the recipe changed since the run started (no data is read)."""
        started = config.from_dict(json.loads(self.recipe_json.read_text()))
        changed = [line for line in config.differences(started, recipe)
                   if not line.startswith(ignored)]
        if changed:
            raise RunError(
                f"cannot resume {self.path}: the recipe changed since the run started:\n  "
                + "\n  ".join(changed)
                + "\nRepeat the original --recipe/--set values, or start a new run without --resume."
            )

    def finished_stages(self) -> list[str]:
        if not self.progress_json.is_file():
            return []
        return json.loads(self.progress_json.read_text())["finished_stages"]

    def mark_stage_finished(self, stage: str) -> None:
        write_json_atomic(self.progress_json, {"finished_stages": [*self.finished_stages(), stage]})

    def stage_plans(self) -> dict[str, dict]:
        """Each planned stage's length (`engine.budget.StagePlan` fields), by stage name."""
        return json.loads(self.budget_json.read_text()) if self.budget_json.is_file() else {}

    def save_stage_plan(self, stage: str, plan: dict) -> None:
        write_json_atomic(self.budget_json, {**self.stage_plans(), stage: plan})

    def finish(self, keep_resume_state: bool = False, keep_best_checkpoint: bool = True) -> list[Path]:
        """Removes what only a resume needs once the run is finished; returns what it removed.

        Stage weights and the feature cache go (unless `keep_resume_state`). best.keras goes
        when its weights are the final model's, or when not `keep_best_checkpoint`: a run
        that keeps its best stage on validation (`train.keep_stage="best"`) has already
        weighed it, since each stage ends on its best epoch (early stopping restores it).
        """
        removed = []
        if not keep_resume_state and self.checkpoints_dir.is_dir():
            removed += sorted(self.checkpoints_dir.glob("*.weights.h5"))
            removed += [p for p in [self.backbone_features] if p.is_file()]
        if self.best_checkpoint.is_file() and (
                not keep_best_checkpoint or same_weights(self.best_checkpoint, self.model_file)):
            removed.append(self.best_checkpoint)
        for path in removed:
            path.unlink()
        return removed

    def record_environment(self, **entries) -> None:
        """Adds `entries` (e.g. the distribution) to env.json."""
        write_json_atomic(self.env_json, {**json.loads(self.env_json.read_text()), **entries})

    def copy_settled(self, folder: Path) -> RunDir:
        """A copy of this run in `folder/<its name>`, taken while another process may be writing
        to it: files still being written (hidden temporaries, renamed into place when done) and
        files removed during the copy are left out.
        """
        import shutil

        def copy_file(source, target):
            try:
                return shutil.copy2(source, target)
            except FileNotFoundError:  # removed since its folder was listed
                return target

        target = folder / self.path.name
        shutil.copytree(self.path, target, ignore=shutil.ignore_patterns(".*"),
                        copy_function=copy_file)
        return RunDir(target)


def same_weights(first: Path, second: Path) -> bool:
    """True when two `.keras` files hold the same weights (read from their archives, no Keras)."""
    import io
    import zipfile

    import h5py
    import numpy as np

    def arrays(path: Path) -> dict:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        found = {}
        with h5py.File(io.BytesIO(data), "r") as weights:
            weights.visititems(lambda name, item: found.__setitem__(name, item[()])
                               if isinstance(item, h5py.Dataset) else None)
        return found

    try:
        a, b = arrays(first), arrays(second)
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def environment(recipe: config.Recipe, data_fingerprint: str) -> dict:
    """Versions, backend, seed and git sha: what is needed to reproduce the run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "seed": recipe.train.seed,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "git_sha": _git_sha(),
        "data_fingerprint": data_fingerprint,
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_sha() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


@dataclass(frozen=True)
class SearchDir(RunDir):
    """Paths inside one hyperparameter search directory (created with label "tune").

        recipe.json, env.json   the searched recipe (with --set values) and environment
        search.json      tuner kind and trial budget of the search (for --resume)
        tuner/           KerasTuner state: oracle.json, trial_<id>/ (trial.json, checkpoints)
        tuner.log        KerasTuner's own messages (the traceback of each failed trial)
        trials/<id>.json one file per trial: values, epochs, seconds, memory, history
        trials/<id>.weights.h5  the trial's best epoch (Hyperband continues from it)
        trials.csv, trials.md, trials.png   the summary table and plots
        index.html       trials.md and trials.png on one self-contained page
        best_recipe.toml a recipe that extends the searched one with the best values
        best.json        the best trial, its objective, the re-run command
        tensorboard/     TensorBoard's HParams view: the experiment's set-up here, and
                         trial_<id>/ per finished trial (its values, objective and metrics)
    """

    @property
    def search_json(self) -> Path:
        return self.path / "search.json"

    @property
    def tuner_dir(self) -> Path:
        return self.path / "tuner"

    @property
    def tuner_log(self) -> Path:
        return self.path / "tuner.log"

    def trial_json(self, trial_id: str) -> Path:
        return self.path / "trials" / f"{trial_id}.json"

    def trial_weights(self, trial_id: str) -> Path:
        return self.path / "trials" / f"{trial_id}.weights.h5"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def trial_tensorboard_dir(self, trial_id: str) -> Path:
        return self.tensorboard_dir / f"trial_{trial_id}"

    @property
    def trials_csv(self) -> Path:
        return self.path / "trials.csv"

    @property
    def trials_markdown(self) -> Path:
        return self.path / "trials.md"

    @property
    def trials_plot(self) -> Path:
        return self.path / "trials.png"

    @property
    def report_html(self) -> Path:
        """The search's page: a search keeps its report files at the top, not in report/."""
        return self.path / "index.html"

    @property
    def best_recipe_toml(self) -> Path:
        return self.path / "best_recipe.toml"

    @property
    def best_json(self) -> Path:
        return self.path / "best.json"
