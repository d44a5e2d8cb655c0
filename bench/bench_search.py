"""Model-based search with pruning (issue 19): TPE with ASHA against random search, over the same space.

    python bench/bench_search.py [--seeds 5] [--trials 30] [--datasets digits,boston] [--data-dir DIR] [--jobs 1]

For each data set and each search seed S (the config's ``seed``, ``--set seed=S``:
it seeds TPE's sampler, random search's draws and every trial's initialization),
two sweeps run one after the other as fresh processes, their order alternating from
seed to seed:

- random search: ``nnlab sweep CONFIG --random N --param ...`` (every trial trains
  all its epochs);
- TPE with ASHA: ``nnlab sweep CONFIG --search tpe --trials N --pruner asha --param ...``
  (Optuna's TPE sampler; successive halving on the validation metric, a trial's
  first rung at a ninth of its steps, a third of the trials going on at each rung).

The space, the same for both methods and both data sets: learning rate
``loguniform(1e-4, 1e-2)``, the first Dense layer's units ``choice(16, 32, 64, 128)``,
the rate of a Dropout layer inserted after it ``uniform(0.0, 0.5)``, batch size
``choice(16, 32, 64, 128)``.

- digits (scikit-learn's, offline; configs/digits.yaml: Dense 64-10, adam, 40 epochs,
  20% of the training part held out for validation): trials ranked by ``val_loss``
  (what the sweep ranks by by default); the best trial's test figures are its own
  (the trial's run evaluates on the test set once, after training).
- boston, k-fold (configs/boston.yaml, the lesson's model: Dense 64-64-1, rmsprop,
  mse with mae, 130 epochs, 4 folds; here with a Dropout layer after the first Dense
  layer so that dropout can be searched): every trial a 4-fold validation, ranked by
  ``val_mae`` (the mean over the folds after the last epoch: the lesson's k-fold
  figure). A k-fold run has no test figure, so after each search the best trial's
  parameters train the lesson's final model (``nnlab train``: all 404 training rows,
  the config's 130 epochs, Listing 4.31) and that model's test MAE is the best
  trial's test figure. Its 130 epochs are not in the search's totals (both methods
  pay the same).

Measured per seed and as means over the seeds: the best trial's validation metric,
the total training epochs of the search (every epoch of every trial, pruned ones
included, all folds of k-fold trials: counted from each trial's run folder,
metrics.json's ``epochs_run``, kfold.json's folds; checked against sweep.json's
``epochs_trained`` for the search), the epochs ratio TPE+ASHA / random, the best
trial's test metric, each sweep's wall time end to end; and for TPE+ASHA how many
epochs it had spent (trials in the order they ran) when its best so far first reached
random search's mean best.

Targets (issue 19): (1) TPE+ASHA reaches random search's best validation metric
(mean over the seeds) with at most half of random search's total training epochs:
its mean best is at least as good as random's mean best, and its mean total epochs
at most 0.5 x random's; (2) its best trial is at least as good on the test set (mean
over the seeds: test loss for digits, the final model's test MAE for Boston).

Data: ``--data-dir`` (or NNLAB_DATA_DIR) holding boston_housing.npz (build the real
one with bench/make_boston_npz.py); without one a Boston-shaped synthetic set is
generated (bench_kfold.py's): the epochs hold, the MAEs are not Boston's. The runs go
to a temporary folder (``--keep DIR`` keeps them there instead).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import NNLAB, REPO, machine_line, run_child, version

PARAMS = (
    "optimizer.learning_rate=loguniform(1e-4, 1e-2)",
    "model.layers.0.Dense.units=choice(16, 32, 64, 128)",
    "model.layers.1.Dropout.rate=uniform(0.0, 0.5)",
    "training.batch_size=choice(16, 32, 64, 128)",
)


@dataclass(frozen=True)
class Bench:
    """One data set of the benchmark: its config, the overrides that open the space, how it is scored."""

    name: str
    config: Path
    sets: tuple[str, ...]
    metric: str  # what ranks the trials (validation)
    kfold: bool
    test_metric: str  # the target's test figure
    test_extra: tuple[str, ...] = ()  # also shown
    needs_data: bool = False


DIGITS = Bench(
    name="digits", config=REPO / "configs" / "digits.yaml",
    sets=(("model.layers=[{Dense: {units: 64, activation: relu}}, {Dropout: {rate: 0.0}}, "
           "{Dense: {units: 10, activation: softmax}}]"),),
    metric="val_loss", kfold=False, test_metric="test_loss", test_extra=("test_accuracy",))
BOSTON = Bench(
    name="boston", config=REPO / "configs" / "boston.yaml",
    sets=("optimizer={name: rmsprop, learning_rate: 0.001}",  # rmsprop's default rate: the lesson's optimizer
          ("model.layers=[{Dense: {units: 64, activation: relu}}, {Dropout: {rate: 0.0}}, "
           "{Dense: {units: 64, activation: relu}}, {Dense: {units: 1}}]")),
    metric="val_mae", kfold=True, test_metric="test_mae", test_extra=("test_loss",), needs_data=True)
BENCHES = {b.name: b for b in (DIGITS, BOSTON)}
PARTS = {"val_": "validation", "test_": "test", "train_": "train"}


def value_of(metrics: dict[str, Any], name: str) -> float | None:
    """``val_mae`` is ``metrics["validation"]["mae"]`` (as nnlab.metric_names reads it)."""
    for prefix, part in PARTS.items():
        if name.startswith(prefix):
            value = (metrics.get(part) or {}).get(name[len(prefix):])
            return float(value) if isinstance(value, (int, float)) else None
    return None


def better(a: float, b: float, way: str) -> bool:
    """Whether ``a`` is at least as good as ``b``."""
    return a <= b if way == "min" else a >= b


def folder_epochs(folder: str | None, kfold: bool) -> int:
    """Epochs a trial's run folder trained: metrics.json's epochs_run; for k-fold, the folds' (kfold.json)."""
    if not folder or not Path(folder).is_dir():
        return 0
    path = Path(folder)
    metrics = json.loads((path / "metrics.json").read_text())
    if not kfold:
        return int(metrics.get("epochs_run") or 0)
    record = path / "kfold.json"
    if record.is_file():
        folds = json.loads(record.read_text()).get("folds") or []
        if folds and all("epochs_run" in f for f in folds):
            return sum(int(f["epochs_run"] or 0) for f in folds)
    return int(metrics.get("epochs_run") or 0) * int(metrics.get("folds_completed") or metrics.get("k") or 1)


@dataclass
class Search:
    """One sweep's outcome."""

    method: str
    seed: int
    seconds: float
    folder: Path
    way: str
    best_index: int | None
    best_value: float | None
    best_params: dict[str, Any]
    epochs: int
    epochs_recorded: int | None  # sweep.json's epochs_trained (searches only)
    statuses: dict[str, int]
    trials: list[dict[str, Any]]
    test: dict[str, float | None] = field(default_factory=dict)
    final_seconds: float | None = None

    def epochs_to_reach(self, target: float, kfold: bool) -> int | None:
        """Epochs spent (trials in index order, the order they ran with one job) when a completed trial's
        metric first reached ``target``; None when none did."""
        spent = 0
        for trial in sorted(self.trials, key=lambda t: t["index"]):
            spent += trial["epochs"]
            if trial["status"] == "completed" and trial["value"] is not None and better(trial["value"], target,
                                                                                         self.way):
                return spent
        return None


def sweep_command(bench: Bench, method: str, seed: int, trials: int, runs: Path, data_dir: Path | None,
                  jobs: int) -> list[str]:
    """The nnlab sweep command line of one search."""
    command = [*NNLAB, "sweep", str(bench.config)]
    command += ["--search", "tpe", "--trials", str(trials), "--pruner", "asha"] if method == "tpe+asha" else \
        ["--random", str(trials)]
    for param in PARAMS:
        command += ["--param", param]
    for override in (*bench.sets, f"seed={seed}"):
        command += ["--set", override]
    if bench.kfold:
        command.append("--kfold")
    command += ["--metric", bench.metric, "--jobs", str(jobs), "--runs-dir", str(runs), "-q"]
    if bench.needs_data and data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return command


def run_search(bench: Bench, method: str, seed: int, trials: int, runs: Path, data_dir: Path | None,
               jobs: int) -> Search:
    """Run one sweep and read its folder."""
    child = run_child(sweep_command(bench, method, seed, trials, runs, data_dir, jobs)).check(
        f"{bench.name} {method} seed {seed}")
    folder = Path(child.stdout.strip().splitlines()[-1])
    record = json.loads((folder / "sweep.json").read_text())
    way = record["direction"]
    rows, statuses = [], {}
    for trial in record["trials"]:
        statuses[trial["status"]] = statuses.get(trial["status"], 0) + 1
        rows.append({"index": trial["index"], "status": trial["status"], "params": trial["params"],
                     "folder": trial.get("folder"), "metrics": trial.get("metrics") or {},
                     "value": value_of(trial.get("metrics") or {}, bench.metric),
                     "epochs": folder_epochs(trial.get("folder"), bench.kfold)})
    ranked = [r for i in record.get("ranking") or [] for r in rows if r["index"] == i and r["status"] == "completed"]
    best = ranked[0] if ranked else None
    return Search(method=method, seed=seed, seconds=child.seconds, folder=folder, way=way,
                  best_index=best["index"] if best else None, best_value=best["value"] if best else None,
                  best_params=dict(best["params"]) if best else {}, epochs=sum(r["epochs"] for r in rows),
                  epochs_recorded=record.get("epochs_trained"), statuses=statuses, trials=rows,
                  test=({name: value_of(best["metrics"], name) for name in (bench.test_metric, *bench.test_extra)}
                        if best and not bench.kfold else {}))


def final_model(bench: Bench, search: Search, runs: Path, data_dir: Path | None) -> None:
    """A k-fold search's best parameters trained as the lesson's final model (all training rows, the config's
    epochs); its test figures become the search's."""
    if search.best_index is None:
        return
    command = [*NNLAB, "train", str(bench.config)]
    for override in (*bench.sets, f"seed={search.seed}",
                     *(f"{key}={yaml_value(value)}" for key, value in search.best_params.items())):
        command += ["--set", override]
    command += ["--runs-dir", str(runs), "-q"]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    child = run_child(command).check(f"{bench.name} final model of {search.method} seed {search.seed}")
    metrics = json.loads((Path(child.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    search.test = {name: value_of(metrics, name) for name in (bench.test_metric, *bench.test_extra)}
    search.final_seconds = child.seconds


def yaml_value(value: Any) -> str:
    """A --set value: floats written out in full (YAML reads 1e-05 as a string)."""
    if isinstance(value, float):
        text = repr(value)
        return f"{value:.20f}".rstrip("0") if "e" in text else text
    return json.dumps(value)


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def describe(bench: Bench, s: Search) -> str:
    pruned = s.statuses.get("pruned", 0)
    others = {k: v for k, v in s.statuses.items() if k not in ("completed", "pruned")}
    tests = ", ".join(f"{name} {fmt(value)}" for name, value in s.test.items())
    where = "final model" if bench.kfold else "its run"
    text = (f"best {bench.metric} {fmt(s.best_value)} (trial {s.best_index}), {s.epochs:,} epochs "
            f"({s.statuses.get('completed', 0)} completed, {pruned} pruned"
            + "".join(f", {v} {k}" for k, v in others.items()) + f"), {s.seconds:.1f} s; "
            f"test ({where}): {tests}")
    if s.final_seconds is not None:
        text += f" ({s.final_seconds:.1f} s)"
    if s.epochs_recorded is not None and s.epochs_recorded != s.epochs:
        text += f"  [sweep.json says {s.epochs_recorded:,} epochs]"
    return text


def report(bench: Bench, searches: dict[str, list[Search]]) -> dict[str, Any]:
    """The means and the verdicts of one data set."""
    random_, tpe = searches["random"], searches["tpe+asha"]
    way = random_[0].way
    test_way = "min" if bench.test_metric.endswith(("loss", "mae")) else "max"
    m = {method: {"best": mean([s.best_value for s in runs]), "epochs": mean([s.epochs for s in runs]),
                  "seconds": mean([s.seconds for s in runs]),
                  "test": {name: mean([s.test.get(name) for s in runs]) for name in (bench.test_metric,
                                                                                     *bench.test_extra)}}
         for method, runs in searches.items()}
    ratio = m["tpe+asha"]["epochs"] / m["random"]["epochs"]
    reached = [s.epochs_to_reach(m["random"]["best"], bench.kfold) for s in tpe]
    target1 = better(m["tpe+asha"]["best"], m["random"]["best"], way) and ratio <= 0.5
    target2 = better(m["tpe+asha"]["test"][bench.test_metric], m["random"]["test"][bench.test_metric], test_way)
    print(f"\n  means over {len(tpe)} seeds:")
    for method in ("random", "tpe+asha"):
        tests = ", ".join(f"{name} {fmt(value)}" for name, value in m[method]["test"].items())
        print(f"    {method:<9} best {bench.metric} {fmt(m[method]['best'])}, {m[method]['epochs']:,.0f} epochs, "
              f"{m[method]['seconds']:.1f} s; best trial's test: {tests}")
    wins = sum(better(t.best_value, r.best_value, way) for t, r in zip(tpe, random_)
               if t.best_value is not None and r.best_value is not None)
    test_wins = sum(better(t.test.get(bench.test_metric), r.test.get(bench.test_metric), test_way)
                    for t, r in zip(tpe, random_)
                    if t.test.get(bench.test_metric) is not None and r.test.get(bench.test_metric) is not None)
    print(f"    epochs ratio TPE+ASHA / random: {ratio:.3f}; wall time ratio: "
          f"{m['tpe+asha']['seconds'] / m['random']['seconds']:.3f}; TPE+ASHA's best at least as good on "
          f"validation in {wins} of {len(tpe)} seeds, on test in {test_wins} of {len(tpe)}")
    print(f"    TPE+ASHA's epochs when its best first reached random's mean best ({fmt(m['random']['best'])}), "
          f"per seed: {', '.join('not reached' if r is None else f'{r:,}' for r in reached)}")
    print(f"  target 1 (mean best {bench.metric} at least random's, with at most half its epochs): "
          f"{fmt(m['tpe+asha']['best'])} vs {fmt(m['random']['best'])}, ratio {ratio:.3f} -> "
          f"{'PASS' if target1 else 'FAIL'}")
    print(f"  target 2 (best trial's mean {bench.test_metric} at least as good): "
          f"{fmt(m['tpe+asha']['test'][bench.test_metric])} vs {fmt(m['random']['test'][bench.test_metric])} -> "
          f"{'PASS' if target2 else 'FAIL'}")
    return {"means": m, "epochs_ratio": ratio, "epochs_to_reach": reached, "target1": target1, "target2": target2,
            "seeds": {method: [{"seed": s.seed, "best_index": s.best_index, "best_value": s.best_value,
                                "best_params": s.best_params, "epochs": s.epochs, "epochs_recorded": s.epochs_recorded,
                                "statuses": s.statuses, "seconds": s.seconds, "test": s.test,
                                "final_seconds": s.final_seconds} for s in runs]
                      for method, runs in searches.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="search seeds 0..N-1 (default 5)")
    parser.add_argument("--trials", type=int, default=30, help="trials of each search (default 30)")
    parser.add_argument("--datasets", default="digits,boston", help="comma-separated: digits, boston")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("NNLAB_DATA_DIR"),
                        help="folder with boston_housing.npz")
    parser.add_argument("--jobs", type=int, default=1, help="--jobs of every sweep (default 1)")
    parser.add_argument("--keep", type=Path, help="write the runs here (kept) instead of a temporary folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    for name in names:
        if name not in BENCHES:
            parser.error(f"unknown data set {name!r} (digits, boston)")

    print("command: " + shlex.join(["python", "bench/bench_search.py", *(sys.argv[1:] if argv is None else argv)]))
    print(f"machine: {machine_line()}; optuna {version('optuna')}")
    print(f"space: {'; '.join(PARAMS)}; {args.trials} trials per search, seeds 0..{args.seeds - 1}, "
          f"--jobs {args.jobs}")
    results: dict[str, Any] = {"command": sys.argv, "machine": machine_line(), "trials": args.trials,
                               "seeds": args.seeds, "jobs": args.jobs, "params": PARAMS, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="nnlab-bench-search-") as tmp:
        root = args.keep or Path(tmp)
        data = args.data_dir
        if "boston" in names:
            if data is None or not (Path(data) / "boston_housing.npz").is_file():
                from bench_kfold import synthetic_boston

                data = root / "data"
                data.mkdir(parents=True, exist_ok=True)
                synthetic_boston(data)
                print("data: synthetic Boston-shaped set (no --data-dir with boston_housing.npz): MAEs are not "
                      "Boston's")
            else:
                print(f"data: {Path(data) / 'boston_housing.npz'}")
            data = Path(data).resolve()
        for name in names:
            bench = BENCHES[name]
            print(f"\n{name}{' (k-fold)' if bench.kfold else ''}: ranked by {bench.metric}; e.g. "
                  + shlex.join(["nnlab", *sweep_command(bench, "tpe+asha", 0, args.trials, Path("RUNS"),
                                                         data, args.jobs)[3:]]))
            searches: dict[str, list[Search]] = {"random": [], "tpe+asha": []}
            for seed in range(args.seeds):
                order = ("random", "tpe+asha") if seed % 2 == 0 else ("tpe+asha", "random")
                done = {}
                for method in order:
                    runs = root / "runs" / name / f"{method}-seed{seed}"
                    done[method] = run_search(bench, method, seed, args.trials, runs, data, args.jobs)
                    if bench.kfold:
                        final_model(bench, done[method], root / "runs" / name / f"final-{method}-seed{seed}", data)
                print(f"  seed {seed}:")
                for method in ("random", "tpe+asha"):
                    searches[method].append(done[method])
                    print(f"    {method:<9} {describe(bench, done[method])}")
                print(f"    epochs ratio TPE+ASHA / random: {done['tpe+asha'].epochs / done['random'].epochs:.3f}",
                      flush=True)
            results["datasets"][name] = report(bench, searches)
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
