"""The ``nnlab`` command. Each command parses, calls into the library, and renders.

Nothing here imports TensorFlow at module level: ``nnlab --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from nnlab import __version__
from nnlab.errors import NnlabError

def _without_type_labels() -> None:
    """Typer's help prints each parameter's Python type (``<str>``, ``<bool>``, ``<path>``) beside its
    name, and a required argument as ``{CONFIG}`` in the usage line; the help text says what to give,
    with a METAVAR where one helps, so the labels go and the usage reads ``nnlab kfold CONFIG``."""
    from typer import core

    core.TyperArgument.display_type_rich = lambda self, ctx: None
    core.TyperOption.display_type_rich = lambda self, ctx: self.metavar
    if hasattr(core.TyperArgument, "_usage_display_name"):  # typer 0.20 and later
        usage = core.TyperArgument._usage_display_name

        def plain_required(self) -> str:
            shown = usage(self)
            return shown[1:-1] if shown.startswith("{") and shown.endswith("}") else shown

        core.TyperArgument._usage_display_name = plain_required


_without_type_labels()

app = typer.Typer(
    name="nnlab",
    help="Run Keras neural-network experiments from YAML configs, and keep every run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

SetOption = typer.Option(None, "--set", "-s", metavar="KEY=VALUE",
                         help="Override a config key (dotted path, YAML value); repeatable.")
RunsDirOption = typer.Option(Path("runs"), "--runs-dir", metavar="DIR", help="Root folder of the run folders.")
MlflowOption = typer.Option(None, "--mlflow", metavar="URI",
                            help="Also log the run to this MLflow tracking server as it trains (else tracking.mlflow "
                                 "in the config, else MLFLOW_TRACKING_URI); needs pip install 'nnlab\\[mlflow]'.")
MlflowExperimentOption = typer.Option(None, "--mlflow-experiment", metavar="NAME",
                                      help="The MLflow experiment (else tracking.experiment, MLFLOW_EXPERIMENT_NAME, "
                                           "nnlab).")
PluginOption = typer.Option(None, "--plugin", metavar="MODULE",
                            help="Import a Python module first (your registered Keras objects); repeatable. "
                                 "A config itself never imports anything.")
def _existing_folder(value: Optional[Path]) -> Optional[Path]:
    """A ``--data-dir`` that is not a folder is refused at once, not after a failed search."""
    if value is not None and not value.is_dir():
        from nnlab.views.console import err_console

        reason = "is not a folder" if value.exists() else "does not exist"
        err_console.print(f"[bold red]error:[/] --data-dir {value}: {reason}", markup=True, soft_wrap=True,
                          highlight=False)
        raise typer.Exit(2)
    return value


DataDirOption = typer.Option(None, "--data-dir", metavar="DIR", envvar="NNLAB_DATA_DIR", callback=_existing_folder,
                             help="Folder of downloaded dataset files (Keras formats).")
BackendOption = typer.Option(None, "--backend", metavar="NAME",
                             help="Keras backend: tensorflow, jax or torch (default: the config's backend, "
                                  "tensorflow).")


QuietOption = typer.Option(False, "--quiet", "-q", help="Print only the run folder.")
JsonOption = typer.Option(False, "--json", help="Print metrics.json when done.")
SeedsOption = typer.Option(None, "--seeds", metavar="N|S1,S2,...",
                           help="Repeat with N seeds (the config's seed and the next N - 1) or with these seeds; "
                                "each repeat is a run folder, then one summary: mean ± std and the 95% CI.")


def user_errors(command):
    """Print NnlabError as one message on stderr and exit with code 2, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from rich.markup import escape

        from nnlab.interrupts import Interrupted
        from nnlab.redaction import redact
        from nnlab.views.console import err_console

        try:
            return command(*args, **kwargs)
        except NnlabError as err:
            err_console.print(f"[bold red]error:[/] {escape(redact(str(err)))}", markup=True, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None
        except (Interrupted, KeyboardInterrupt) as stop:
            err_console.print("[yellow]stopped[/] before any run folder was written")
            raise typer.Exit(getattr(stop, "exit_code", 130)) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                              help="Print the version and exit.")) -> None:
    """Run Keras neural-network experiments from YAML configs, and keep every run."""


@app.command()
@user_errors
def train(
    config: Optional[str] = typer.Argument(None, metavar="CONFIG", help="A YAML config file, or the name of one (e.g. spiral_mlp)."),
    set_: Optional[List[str]] = SetOption,
    runs_dir: Path = RunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN",
                                          help="Continue an interrupted run folder from its checkpoint."),
    plugin: Optional[List[str]] = PluginOption,
    backend: Optional[str] = BackendOption,
    seeds: Optional[str] = SeedsOption,
    mlflow: Optional[str] = MlflowOption,
    mlflow_experiment: Optional[str] = MlflowExperimentOption,
    quiet: bool = QuietOption,
    json_output: bool = JsonOption,
) -> None:
    """Train one experiment and write its run folder under runs/.

    Example: [bold]nnlab train spiral_mlp --set training.epochs=200[/]
    """
    from nnlab.api import core
    from nnlab.plugins import import_plugins
    from nnlab.views.progress import EpochProgress
    from nnlab.views.summaries import run_summary

    import_plugins(plugin or [])
    trained = core.train(config, overrides=set_ or [], seeds=seeds, runs_dir=runs_dir, data_dir=data_dir,
                         backend=backend, resume=resume, mlflow=mlflow, mlflow_experiment=mlflow_experiment,
                         argv=sys.argv, progress=None if quiet or json_output else EpochProgress)
    if trained.repeated:
        _repeat(trained, quiet=quiet, json_output=json_output)
    _render_result(trained.results[0], quiet=quiet, json_output=json_output,
                   render=lambda result: run_summary(result.metrics, str(result.run.path), result.history))


@app.command()
@user_errors
def validate(
    config: str = typer.Argument(..., metavar="CONFIG", help="A YAML config file, or the name of one."),
    set_: Optional[List[str]] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
) -> None:
    """Check a config completely (schema, Keras names, model against its data) without training.

    Example: [bold]nnlab validate digits --set loss=mse[/]
    """
    from nnlab.config import load_config
    from nnlab.plugins import import_plugins
    from nnlab.views.console import console
    from nnlab.validation import check_config

    import_plugins(plugin or [])
    cfg = load_config(config, set_ or [])
    report = check_config(cfg, data_dir=data_dir)
    console.print(f"[green]ok[/] {cfg.source}: {report}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of a config, for editors.

    Example: [bold]nnlab schema > nnlab.schema.json[/]
    """
    from nnlab.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
@user_errors
def sweep(
    config: Optional[str] = typer.Argument(None, metavar="CONFIG",
                                           help="A YAML config file, or the name of one (e.g. imdb_variants); "
                                                "not needed with --resume."),
    grid: Optional[List[str]] = typer.Option(None, "--grid", metavar="KEY=V1,V2,...",
                                             help="Values of a dotted key to try; repeatable (a grid)."),
    random: Optional[int] = typer.Option(None, "--random", metavar="N", help="Draw N random trials."),
    param: Optional[List[str]] = typer.Option(None, "--param", metavar="KEY=DIST",
                                              help="uniform(a,b), loguniform(a,b), randint(a,b), choice(...)."),
    search: Optional[str] = typer.Option(None, "--search", metavar="METHOD",
                                         help="Propose trials with a model of the earlier ones: tpe (Optuna's "
                                              "TPE sampler, seeded by the config's seed); needs --trials and "
                                              "pip install 'nnlab\\[search]'."),
    trials: Optional[int] = typer.Option(None, "--trials", metavar="N", help="With --search: how many trials."),
    pruner: Optional[str] = typer.Option(None, "--pruner", metavar="NAME",
                                         help="With --search: stop unpromising trials early on their validation "
                                              "metric: median, asha or hyperband."),
    max_epochs_total: Optional[int] = typer.Option(None, "--max-epochs-total", metavar="N",
                                                   help="With --search: start no trial once the trials have "
                                                        "trained N epochs in all."),
    timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS",
                                            help="With --search: start no new trial once SECONDS have passed (the first "
                                                 "always runs; a resume counts the time before)."),
    kfold: bool = typer.Option(False, "--kfold", help="Run every trial as a k-fold validation (nnlab kfold); "
                                                      "ranked by the mean validation metric over the folds."),
    metric: Optional[str] = typer.Option(None, "--metric", metavar="METRIC", help="What ranks trials, e.g. val_accuracy."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="Worker processes (local), or CPUs of a local Ray (default 1)."),
    executor: Optional[str] = typer.Option(None, "--executor", metavar="NAME", help="local (default) or ray."),
    address: Optional[str] = typer.Option(None, "--address", metavar="ADDRESS", help="Ray cluster: auto, ray://host:port."),
    cpus_per_trial: Optional[float] = typer.Option(None, "--cpus-per-trial", min=0.0, metavar="CPUS",
                                                   help="CPUs per Ray task (a trial, or a fold with --kfold; "
                                                        "default 1)."),
    gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial", min=0.0, metavar="GPUS",
                                                   help="GPUs per Ray task (a trial, or a fold with --kfold; "
                                                        "default 0)."),
    max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1, metavar="N",
                                             help="Refuse a sweep of more than N runs (default 10,000)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="SWEEP_FOLDER",
                                          help="Run the trials a stopped sweep did not finish, in its folder, "
                                               "with its config, space, metric and executor."),
    set_: Optional[List[str]] = SetOption,
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", metavar="DIR",
                                            help="Root folder of the run folders (default: runs; with --resume, "
                                                 "the sweep folder's)."),
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    backend: Optional[str] = BackendOption,
    seeds: Optional[str] = typer.Option(None, "--seeds", metavar="N|S1,S2,...",
                                        help="Repeat every trial with N seeds (or these seeds); trials are ranked "
                                             "by their mean, shown with ± std, the 95% CI and n."),
    mlflow: Optional[str] = MlflowOption,
    mlflow_experiment: Optional[str] = MlflowExperimentOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the sweep folder."),
    json_output: bool = typer.Option(False, "--json", help="Print sweep.json when done."),
) -> None:
    """Run variations of a config (a grid, a list of variants, random draws, a model-based search), each a
    run; rank them.

    Example: [bold]nnlab sweep digits --grid model.layers.0.Dense.units=16,64[/]
    """
    from nnlab.plugins import import_plugins
    from nnlab.sweeps.start import SweepOptions, start_sweep
    from nnlab.views.console import console
    from nnlab.views.progress import TrialLines
    from nnlab.views.summaries import sweep_summary

    import_plugins(plugin or [])
    options = SweepOptions(config=config, overrides=set_ or [], grid=grid or [], param=param or [], random=random,
                           search=search, trials=trials, pruner=pruner, max_epochs_total=max_epochs_total,
                           timeout=timeout, kfold=kfold, metric=metric, jobs=jobs, executor=executor,
                           address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                           max_trials=max_trials, resume=resume, runs_dir=runs_dir, data_dir=data_dir,
                           backend=backend, seeds=seeds, mlflow=mlflow, mlflow_experiment=mlflow_experiment)
    talk = not (quiet or json_output)
    result = start_sweep(options, report=TrialLines() if talk else None,
                         announce=(lambda line: console.print(line, soft_wrap=True, highlight=False)) if talk
                         else None)
    if json_output:
        from nnlab.store.format import SWEEP

        typer.echo((result.run.path / SWEEP).read_text())
    elif quiet:
        typer.echo(str(result.run.path))
    else:
        sweep_summary(result)
    raise typer.Exit(result.exit_code)


@app.command()
@user_errors
def compare(
    paths: Optional[List[str]] = typer.Argument(None, metavar="PATH",
                                                help="Runs folders or run folders (ids and prefixes too); "
                                                     "default: --runs-dir."),
    sort: Optional[str] = typer.Option(None, "--sort", metavar="KEY",
                                       help="Sort by a metric or config key (test_accuracy, val_loss, "
                                            "optimizer.learning_rate); loss-like ascending, accuracy-like "
                                            "descending."),
    ascending: Optional[bool] = typer.Option(None, "--asc/--desc", help="Force the sort direction."),
    filter_: Optional[List[str]] = typer.Option(None, "--filter", "-f", metavar="KEY<OP>VALUE",
                                                help="Keep runs where KEY =, !=, >, <, >= or <= VALUE "
                                                     "(e.g. status=completed, test_accuracy>0.85); repeatable."),
    last: Optional[int] = typer.Option(None, "--last", metavar="N", help="Only the N runs started last."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="A,B,...",
                                          help="Columns to show (fields or config keys), or 'all'."),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table, markdown, latex (a booktabs tabular), csv or "
                                                      "json (csv and json for pandas or jq)."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png",
                                        help="Draw the listed runs' learning curves in one figure "
                                             "(with --group-by: each group's mean, a ±1 std band)."),
    metric: Optional[str] = typer.Option(None, "--metric", metavar="M",
                                         help="History column for --plot (default val_loss); with --versus, "
                                              "the metric compared (default the main test metric)."),
    group_by: Optional[str] = typer.Option(None, "--group-by", metavar="KEY[,KEY...]",
                                           help="One row per group of runs (a config key, name, dataset, "
                                                "sweep_id, or group: the repeats of one config): n, mean ± std, "
                                                "95% CI, min, max; --columns picks the metrics."),
    versus: Optional[str] = typer.Option(None, "--versus", metavar="VALUE",
                                         help="With --group-by: test every group against the group VALUE "
                                              "(Welch, Mann-Whitney, Hedges' g, Holm-adjusted)."),
    rows: Optional[str] = typer.Option(None, "--rows", metavar="KEY",
                                       help="With --cols: a grid of one metric (--metric), each cell a group's "
                                            "mean ± std (n), the best of each column marked."),
    cols: Optional[str] = typer.Option(None, "--cols", metavar="KEY", help="The grid's columns (e.g. dataset)."),
    runs_dir: Path = RunsDirOption,
) -> None:
    """List runs as one table; two runs side by side; their curves overlaid; groups of runs tested.

    Example: [bold]nnlab compare --sort test_accuracy --last 5[/]
    """
    options = dict(runs_dir=runs_dir, sort=sort, ascending=ascending, filters=filter_ or [], last=last,
                   columns=columns, fmt=fmt, plot=plot, metric=metric, versus=versus)
    if group_by is None and rows is None and cols is None:
        from nnlab.views.compare import run_compare

        run_compare(paths or [], **options)
    else:
        from nnlab.views.groups import run_group_compare

        run_group_compare(paths or [], group_by=group_by, rows=rows, cols=cols, **options)


@app.command()
@user_errors
def report(
    paths: Optional[List[str]] = typer.Argument(None, metavar="PATH",
                                                help="Runs folders, run folders, ids or sweep folders, as for "
                                                     "compare; default: --runs-dir."),
    filter_: Optional[List[str]] = typer.Option(None, "--filter", "-f", metavar="KEY<OP>VALUE",
                                                help="Keep runs where KEY =, !=, >, <, >= or <= VALUE; repeatable."),
    last: Optional[int] = typer.Option(None, "--last", metavar="N", help="Only the N runs started last."),
    group_by: Optional[str] = typer.Option(None, "--group-by", metavar="KEY[,KEY...]",
                                           help="Add the group table (mean ± std, 95% CI, n) and each group's "
                                                "mean curves."),
    versus: Optional[str] = typer.Option(None, "--versus", metavar="VALUE",
                                         help="With --group-by: test every group against the group VALUE."),
    metric: Optional[str] = typer.Option(None, "--metric", metavar="M",
                                         help="With --versus, the metric compared (default the main test metric)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE.html",
                                          help="The report's file (default: <runs-dir>/report.html)."),
    runs_dir: Path = RunsDirOption,
) -> None:
    """Write one self-contained HTML page of runs: table, groups, curves, sweeps, each run.

    It opens from disk with no network: every script, style and picture is inside the file.

    Example: [bold]nnlab report --group-by model.layers.0.Dense.units --versus 16[/]
    """
    from nnlab.reporting.write import write_report

    write_report(paths or [], runs_dir=runs_dir, output=output, filters=filter_ or [], last=last,
                 group_by=group_by, versus=versus, metric=metric)


@app.command()
@user_errors
def show(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    runs_dir: Path = RunsDirOption,
) -> None:
    """Show one run: config, model, final metrics with the baseline, epochs, plots.

    Example: [bold]nnlab show last[/]
    """
    from nnlab.views.show import show_run

    show_run(run, runs_dir)


# -- run management: tags, notes, the trash (nnlab.views.manage) ---------------------------------------

ManageFilterOption = typer.Option(None, "--filter", "-f", metavar="KEY<OP>VALUE",
                                  help="Choose runs as nnlab compare --filter does (e.g. status=failed, "
                                       "tag.lesson=4); with RUN, keep those of them that match; repeatable.")
DryRunOption = typer.Option(False, "--dry-run", help="Print what would change, and change nothing.")


@app.command()
@user_errors
def tag(
    items: Optional[List[str]] = typer.Argument(None, metavar="RUN|KEY=VALUE",
                                                help="Runs (a run folder, a run id, a unique prefix of one, or "
                                                     "'last') and the tags to set on them."),
    remove: Optional[List[str]] = typer.Option(None, "--remove", "-r", metavar="KEY",
                                               help="Take the tag KEY away; repeatable."),
    filter_: Optional[List[str]] = ManageFilterOption,
    dry_run: bool = DryRunOption,
    runs_dir: Path = RunsDirOption,
) -> None:
    """Tag runs (KEY=VALUE, kept in their tags.json); with no tag given, print their tags.

    compare filters, sorts and groups by them as tag.KEY.

    Example: [bold]nnlab tag last lesson=4 student=ann[/]
    """
    from nnlab.views.manage import run_tag

    run_tag(items or [], remove=remove or [], filters=filter_ or [], runs_dir=runs_dir, dry_run=dry_run)


@app.command()
@user_errors
def note(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    text: Optional[str] = typer.Argument(None, metavar="TEXT", help="The note (it replaces the note there is)."),
    append: bool = typer.Option(False, "--append", "-a", help="Add TEXT as a new line of the note."),
    clear: bool = typer.Option(False, "--clear", help="Remove the note."),
    dry_run: bool = DryRunOption,
    runs_dir: Path = RunsDirOption,
) -> None:
    """Write a run's note (one free text, shown by show and report); with no TEXT, print it.

    Example: [bold]nnlab note last "dropout helps; try 0.3 next"[/]
    """
    from nnlab.views.manage import run_note

    run_note(run, text, append=append, clear=clear, runs_dir=runs_dir, dry_run=dry_run)


@app.command()
@user_errors
def rm(
    runs: Optional[List[str]] = typer.Argument(None, metavar="RUN",
                                               help="Runs to move to the trash (a run folder, a run id, a unique "
                                                    "prefix of one, or 'last'); a sweep takes its trials along."),
    filter_: Optional[List[str]] = ManageFilterOption,
    list_trash: bool = typer.Option(False, "--list", help="List what is in the trash."),
    purge: bool = typer.Option(False, "--purge", help="Delete what is in the trash, for good."),
    older_than: Optional[str] = typer.Option(None, "--older-than", metavar="AGE",
                                             help="With --purge: only what was removed more than AGE ago "
                                                  "(30d, 12h, 2w)."),
    dry_run: bool = DryRunOption,
    runs_dir: Path = RunsDirOption,
) -> None:
    """Move runs to <runs-dir>/.trash/ (compare and report skip it); nothing is deleted without --purge.

    A running run is refused, unless it is lost (its process is gone).

    Example: [bold]nnlab rm --filter status=failed --dry-run[/]
    """
    from nnlab.views.manage import run_rm

    run_rm(runs or [], filters=filter_ or [], runs_dir=runs_dir, dry_run=dry_run, list_trash=list_trash,
           purge=purge, older_than=older_than)


@app.command()
@user_errors
def restore(
    runs: Optional[List[str]] = typer.Argument(None, metavar="RUN",
                                     help="Runs in the trash: a run id, a unique prefix of one, or 'last'."),
    dry_run: bool = DryRunOption,
    runs_dir: Path = RunsDirOption,
) -> None:
    """Move runs back from the trash to --runs-dir (a sweep with its trials).

    Example: [bold]nnlab restore 20250101T100000Z_digits[/]
    """
    from nnlab.views.manage import run_restore

    run_restore(runs or [], runs_dir=runs_dir, dry_run=dry_run)


@app.command()
@user_errors
def predict(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    index: Optional[int] = typer.Option(None, "--index", "-i", metavar="I", help="A test example of the run."),
    input_file: Optional[Path] = typer.Option(None, "--input", metavar="FILE",
                                              help=".npy/.npz array, an image file, or a text file of words."),
    top: int = typer.Option(5, "--top", "-k", min=1, metavar="K", help="Show the K most probable classes."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png",
                                        help="Draw the example with its predicted and true label."),
    runs_dir: Path = RunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    invert: bool = typer.Option(False, "--invert", help="Turn an image's dark into light and back (a dark digit "
                                                        "drawn on white, for MNIST's white digits on black)."),
    json_output: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """Predict with a run's model: a test example (--index) or your own input (--input).

    Example: [bold]nnlab predict last --input digit.png --plot digit_prediction.png[/]
    """
    from nnlab.plugins import import_plugins
    from nnlab.prediction import predict as run_predict, render

    import_plugins(plugin or [])
    result = run_predict(run, runs_dir=runs_dir, index=index, input_file=input_file, plot=plot, data_dir=data_dir,
                         invert=invert)
    if json_output:
        typer.echo(json.dumps({"run": result.folder.name, "source": result.source, "warnings": result.warnings,
                               "predictions": [p.as_dict(top) for p in result.predictions],
                               "plot": None if result.plot is None else str(result.plot)}, indent=2))
    else:
        render(result, top)


@app.command()
@user_errors
def export(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    fmt: str = typer.Option(..., "--format", metavar="FORMAT", help="saved_model, onnx or tflite."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="PATH",
                                          help="Where to write the export (default: RUN/export/saved_model/, "
                                               "RUN/export/model.onnx or RUN/export/model.tflite); a folder "
                                               "for onnx or tflite gets model.onnx or model.tflite inside."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export at that path."),
    runs_dir: Path = RunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    json_output: bool = typer.Option(False, "--json", help="Print what was written and the check as JSON."),
) -> None:
    """Export a run's model as a SavedModel, ONNX or TFLite file, checked against model.keras on the first
    10 test examples (exit 1 if they differ by more than 1e-5).

    Example: [bold]nnlab export last --format onnx[/]
    """
    from nnlab.export import export_run, render
    from nnlab.plugins import import_plugins

    import_plugins(plugin or [])
    result = export_run(run, fmt=fmt, output=output, force=force, runs_dir=runs_dir, data_dir=data_dir)
    if json_output:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        render(result)


datasets_app = typer.Typer(help="The datasets nnlab knows, where each would come from, and one example shown.",
                           no_args_is_help=False, add_completion=False, rich_markup_mode="rich")
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
@user_errors
def datasets_list(
    ctx: typer.Context,
    data_dir: Optional[Path] = DataDirOption,
    json_output: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the registered datasets: task, shapes, classes, source, and whether they are available offline.

    Example: [bold]nnlab datasets --data-dir ~/keras-data[/]
    """
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import asdict

    from nnlab.datasets.catalog import catalog, print_catalog

    rows = catalog(data_dir)
    if json_output:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print_catalog(rows)


@datasets_app.command("show")
@user_errors
def datasets_show(
    name: str = typer.Argument(..., metavar="NAME", help="A dataset name (see nnlab datasets)."),
    index: int = typer.Option(0, "--index", "-i", min=0, metavar="I", help="Which example."),
    split: str = typer.Option("train", "--split", metavar="PART", help="train or test."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Show one example: a review or newswire decoded to words, an image, or a row of features.

    Example: [bold]nnlab datasets show imdb --index 0[/]
    """
    from nnlab.datasets.catalog import example, print_example

    print_example(example(name, index, split, data_dir))


@app.command()
@user_errors
def kfold(
    config: str = typer.Argument(..., metavar="CONFIG", help="A YAML config file, or the name of one (e.g. boston)."),
    k: Optional[int] = typer.Option(None, "--k", min=2, metavar="N", help="Number of folds (default: the config's kfold.k)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, metavar="N", help="Epochs per fold (default: the config's)."),
    shuffle: Optional[bool] = typer.Option(None, "--shuffle/--no-shuffle",
                                           help="Shuffle rows before cutting folds (default: kfold.shuffle)."),
    final: bool = typer.Option(False, "--final", help="Then train on the whole training part for the best "
                                                      "epoch count and evaluate on the test set."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, metavar="N", help="Train folds in this many worker processes."),
    set_: Optional[List[str]] = SetOption,
    runs_dir: Path = RunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    backend: Optional[str] = BackendOption,
    seeds: Optional[str] = SeedsOption,
    mlflow: Optional[str] = MlflowOption,
    mlflow_experiment: Optional[str] = MlflowExperimentOption,
    quiet: bool = QuietOption,
    json_output: bool = JsonOption,
) -> None:
    """k-fold validation: averaged learning curves, the best epoch and, with --final, the final model.

    Example: [bold]nnlab kfold boston --final --data-dir ~/keras-data[/]
    """
    from nnlab.api import core
    from nnlab.plugins import import_plugins
    from nnlab.views.progress import KFoldProgress
    from nnlab.views.summaries import kfold_summary

    import_plugins(plugin or [])  # before the workers start: they are spawned after, and import it with the config
    trained = core.kfold(config, overrides=set_ or [], k=k, epochs=epochs, shuffle=shuffle, final=final, jobs=jobs,
                         seeds=seeds, runs_dir=runs_dir, data_dir=data_dir, backend=backend, mlflow=mlflow,
                         mlflow_experiment=mlflow_experiment, argv=sys.argv,
                         progress=None if quiet or json_output else KFoldProgress)
    if trained.repeated:
        _repeat(trained, quiet=quiet, json_output=json_output)
    _render_result(trained.results[0], quiet=quiet, json_output=json_output, render=kfold_summary)


RerunRunsDirOption = typer.Option(None, "--runs-dir", metavar="DIR",
                                  help="Where RUN ids are looked up (default runs/) and the new run folder goes "
                                       "(default: beside RUN).")


@app.command()
@user_errors
def rerun(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    set_: Optional[List[str]] = SetOption,
    runs_dir: Optional[Path] = RerunRunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    quiet: bool = QuietOption,
    json_output: bool = JsonOption,
) -> None:
    """Start a new run from a run folder's config.yaml, as a train or k-fold run as it was; its
    metrics.json records rerun_of.

    Example: [bold]nnlab rerun last --set training.epochs=80[/]
    """
    from nnlab import rerun as reruns
    from nnlab.plugins import import_plugins
    from nnlab.store.reading import resolve_run

    import_plugins(plugin or [])
    original = reruns.original_run(resolve_run(run, runs_dir or "runs"), set_ or [])
    for note in original.notes:
        _warn(note)
    progress, render = _displays_of(original)
    start = functools.partial(reruns.rerun, original, runs_dir=runs_dir, data_dir=data_dir, argv=sys.argv)
    _run_and_render(start, progress, quiet=quiet, json_output=json_output, render=render)


@app.command()
@user_errors
def verify(
    run: str = typer.Argument(..., metavar="RUN", help="A run folder, a run id, a unique prefix of one, or 'last'."),
    tol: float = typer.Option(1e-6, "--tol", min=0.0, metavar="TOL",
                              help="The largest absolute difference of a final metric that still agrees "
                                   "(0: identical figures)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the new run folder (beside RUN, or in --runs-dir), "
                                                    "tagged rerun_of; otherwise it trains in a temporary folder "
                                                    "that is removed afterwards."),
    runs_dir: Optional[Path] = RerunRunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Train a run again from its config and print each final metric beside the original's; exit 0 when all
    agree within --tol, 1 otherwise.

    Example: [bold]nnlab verify last --tol 0[/]
    """
    from nnlab import rerun as reruns
    from nnlab.plugins import import_plugins
    from nnlab.store.reading import resolve_run

    import_plugins(plugin or [])
    original = reruns.original_run(resolve_run(run, runs_dir or "runs"), verifying=True)
    for line in reruns.provenance_warnings(original, data_dir):  # before it trains: what may explain a difference
        _warn(line)
    progress, _ = _displays_of(original)
    start = functools.partial(reruns.verify, original, tolerance=tol, keep=keep, runs_dir=runs_dir,
                              data_dir=data_dir, argv=sys.argv)
    if json_output:
        verification = start()
        typer.echo(json.dumps(verification.to_dict(), indent=2))
    else:
        with progress() as display:
            verification = start(report=display)
        _verification_summary(verification)
    raise typer.Exit(verification.exit_code)


def _warn(line: str) -> None:
    """One warning line on stderr."""
    from rich.markup import escape

    from nnlab.views.console import err_console

    err_console.print(f"[yellow]warning:[/] {escape(line)}", markup=True, soft_wrap=True)


def _displays_of(original):
    """The progress display and the summary ``nnlab train`` (or ``nnlab kfold``) shows, for a new run of
    ``original``'s kind."""
    from nnlab.views.progress import EpochProgress, KFoldProgress
    from nnlab.views.summaries import kfold_summary, run_summary

    config = original.config
    if original.kind == "kfold":
        return (lambda: KFoldProgress(config.name)), kfold_summary
    return ((lambda: EpochProgress(config.name, config.training.epochs)),
            lambda result: run_summary(result.metrics, str(result.run.path), result.history))


def _verification_summary(verification) -> None:
    """``nnlab verify``'s table: each final metric, the original's figure, the new run's, their difference;
    then one line saying whether the run is verified and, if not, which metrics are outside."""
    from rich.markup import escape
    from rich.table import Table

    from nnlab.views.console import console

    def exact(value) -> str:  # ten significant digits: a difference the tolerance sees shows in the next column
        return "-" if value is None else f"{value:.10g}"

    def gap(value) -> str:
        return "-" if value is None else "0" if value == 0 else f"{value:.3g}"

    name = escape(verification.original.run_id)
    if verification.checks:
        table = Table(show_header=True, header_style="bold")
        table.add_column("metric")
        for header in ("original", "re-run", "|difference|"):
            table.add_column(header, justify="right", no_wrap=True)
        table.add_column("", no_wrap=True)
        for c in verification.checks:
            table.add_row(escape(c.label), exact(c.original), exact(c.rerun), gap(c.difference),
                          "ok" if c.within else "[red]outside[/]", style=None if c.within else "red")
        console.print(table)
    tolerance = f"{verification.tolerance:g}"
    if verification.checks and verification.verified:
        largest = max(c.difference or 0.0 for c in verification.checks)
        console.print(f"[green]verified[/] {name}: all {len(verification.checks)} final metrics agree within "
                      f"{tolerance} (largest difference {gap(largest)})", soft_wrap=True)
    elif verification.checks:
        outside = ", ".join(f"{c.label} ({'missing in one run' if c.difference is None else f'by {gap(c.difference)}'})"
                            for c in verification.outside)
        console.print(f"[red]not verified[/] {name}: outside the tolerance {tolerance}: {escape(outside)}",
                      soft_wrap=True)
    else:
        message = f": {verification.message}" if verification.message else ""
        console.print(f"[red]not verified[/] {name}: the re-run ended {verification.status}{escape(message)}",
                      soft_wrap=True)
    if verification.kept is not None:
        console.print(f"re-run folder: [bold]{escape(str(verification.kept))}[/]", soft_wrap=True)


def _repeat(trained, *, quiet: bool, json_output: bool) -> None:
    """``--seeds``: one summary of the repeats (:func:`nnlab.api.core.train` ran them); exit.

    Args:
        trained: the repeats (:class:`nnlab.api.core.Trained`).
        quiet: print only the run folders.
        json_output: print the repeats' metrics.json as a list.
    """
    from nnlab.views.summaries import repeats_summary

    results = trained.results
    if json_output:
        typer.echo(json.dumps([r.metrics for r in results], indent=2))
    elif quiet:
        typer.echo("\n".join(str(r.run.path) for r in results))
    else:
        repeats_summary(trained.config.name, [r.metrics for r in results], [str(r.run.path) for r in results],
                        trained.seeds)
    raise typer.Exit(trained.exit_code)


def _run_and_render(start, progress, *, quiet: bool, json_output: bool, render) -> None:
    """Run ``start`` (with a progress display unless quiet), print its result as asked, exit with its code.

    Args:
        start: the run; ``start(report=...)`` takes the progress display.
        progress: makes the progress display (a context manager).
        quiet: print only the run folder (and on stderr the status of a run that did not complete).
        json_output: print metrics.json.
        render: prints the summary of the result.
    """
    if quiet or json_output:
        result = start()
    else:
        with progress() as display:
            result = start(report=display)
    _render_result(result, quiet=quiet, json_output=json_output, render=render)


def _render_result(result, *, quiet: bool, json_output: bool, render) -> None:
    """Print a run's result as asked (its summary, only its folder, or metrics.json); exit with its code."""
    if json_output:
        typer.echo(json.dumps(result.metrics, indent=2))
    elif quiet:
        typer.echo(str(result.run.path))
        if result.exit_code:  # scripts get the folder on stdout, and why it did not complete on stderr
            status, message = result.metrics.get("status"), result.metrics.get("message")
            typer.echo(f"{status}: {message}" if message else str(status), err=True)
    else:
        render(result)
    raise typer.Exit(result.exit_code)


mlflow_app = typer.Typer(help="Copy run folders to an MLflow tracking server.", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")


@mlflow_app.command("push")
@user_errors
def mlflow_push(
    paths: Optional[List[str]] = typer.Argument(None, metavar="PATH",
                                                help="Run folders or runs roots (default: --runs-dir)."),
    uri: Optional[str] = typer.Option(None, "--uri", metavar="URI",
                                      help="The MLflow tracking URI (default: MLFLOW_TRACKING_URI)."),
    experiment: Optional[str] = typer.Option(None, "--experiment", metavar="NAME",
                                             help="The MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else nnlab)."),
    runs_dir: Path = RunsDirOption,
) -> None:
    """Upload run folders to MLflow: one MLflow run each (k-fold folds and sweep trials nested), found again
    by its run id, so pushing twice sends only what is new.

    Example: [bold]nnlab mlflow push runs/ --uri http://127.0.0.1:5000[/]
    """
    from nnlab.tracking import push_runs, target_of
    from nnlab.views.console import console

    target = target_of(uri, experiment, source="--uri")
    if target is None:
        raise NnlabError("give --uri URI (or set MLFLOW_TRACKING_URI)", source="nnlab mlflow push")
    pushed = push_runs(target, paths or [], runs_dir)
    for line in pushed.lines():
        console.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(1 if pushed.failed else 0)


def main() -> None:
    """Entry point of the ``nnlab`` script."""
    try:
        app()
    finally:
        # The interpreter's last garbage collection walks the million objects TensorFlow leaves
        # behind (about 0.8 s after a training command); the process is ending, so skip them.
        import gc

        gc.freeze()
