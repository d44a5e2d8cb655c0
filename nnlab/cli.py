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
RunsDirOption = typer.Option(Path("runs"), "--runs-dir", help="Root folder of the run folders.")
PluginOption = typer.Option(None, "--plugin", metavar="MODULE",
                            help="Import a Python module first (your registered Keras objects); repeatable. "
                                 "A config itself never imports anything.")
DataDirOption = typer.Option(None, "--data-dir", envvar="NNLAB_DATA_DIR",
                             help="Folder of downloaded dataset files (Keras formats).")


def user_errors(command):
    """Print NnlabError as one message on stderr and exit with code 2, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from nnlab.interrupts import Interrupted
        from nnlab.reporting import err_console

        try:
            return command(*args, **kwargs)
        except NnlabError as err:
            err_console.print(f"[bold red]error:[/] {err}", markup=True, soft_wrap=True)
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
    config: Optional[str] = typer.Argument(None, help="A YAML config file, or the name of one (e.g. spiral_mlp)."),
    set_: Optional[List[str]] = SetOption,
    runs_dir: Path = RunsDirOption,
    data_dir: Optional[Path] = DataDirOption,
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN",
                                          help="Continue an interrupted run folder from its checkpoint."),
    plugin: Optional[List[str]] = PluginOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the run folder."),
    json_output: bool = typer.Option(False, "--json", help="Print metrics.json when done."),
) -> None:
    """Train one experiment and write its run folder under runs/."""
    from nnlab.config import load_config
    from nnlab.plugins import import_plugins
    from nnlab.reporting import EpochProgress, run_summary
    from nnlab import training

    import_plugins(plugin or [])
    if resume is not None:
        if config is not None or set_:
            raise NnlabError("a run resumes with the config it started with; it cannot be changed on resume "
                             "(drop CONFIG and --set, or start a new run)", source="--resume")
        label, epochs = resume.name, None
        start = functools.partial(training.resume, resume, data_dir=data_dir, argv=sys.argv)
    elif config is None:
        raise NnlabError("give a config file or name (e.g. nnlab train spiral_mlp), or --resume RUN",
                         source="nnlab train")
    else:
        cfg = load_config(config, set_ or [])
        label, epochs = cfg.name, cfg.training.epochs
        start = functools.partial(training.train, cfg, runs_dir=runs_dir, data_dir=data_dir, argv=sys.argv)
    if quiet or json_output:
        result = start()
    else:
        with EpochProgress(label, epochs) as progress:
            result = start(report=progress)
    if json_output:
        typer.echo(json.dumps(result.metrics, indent=2))
    elif quiet:
        typer.echo(str(result.run.path))
    else:
        run_summary(result.metrics, str(result.run.path))
    raise typer.Exit(result.exit_code)


@app.command()
@user_errors
def validate(
    config: str = typer.Argument(..., help="A YAML config file, or the name of one."),
    set_: Optional[List[str]] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    plugin: Optional[List[str]] = PluginOption,
) -> None:
    """Check a config completely (schema, Keras names, model against its data) without training."""
    from nnlab.config import load_config
    from nnlab.plugins import import_plugins
    from nnlab.reporting import console
    from nnlab.validation import check_config

    import_plugins(plugin or [])
    cfg = load_config(config, set_ or [])
    report = check_config(cfg, data_dir=data_dir)
    console.print(f"[green]ok[/] {cfg.source}: {report}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of a config, for editors."""
    from nnlab.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def main() -> None:
    """Entry point of the ``nnlab`` script."""
    app()
