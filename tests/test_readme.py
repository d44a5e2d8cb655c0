"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

import re

from conftest import REPO


def fenced_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    commands = fenced_commands()
    assert commands[0] == "pip install . && nnlab train configs/digits.yaml"
    test_command = commands[1]
    assert "pytest" in test_command
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_the_readme_results_are_what_their_commands_print(tmp_path):
    """Each figure of the README's results table that runs offline in seconds, re-measured."""
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import readme_figures
    finally:
        sys.path.pop(0)
    rows = readme_figures.results_rows()
    assert len(rows) >= 4, "the table was found"
    checked = 0
    for i, (command, cell) in enumerate(rows):
        if "DIR" in command or any(name in command for name in readme_figures.SLOW):
            continue  # needs a data directory, or minutes: bench/readme_figures.py --all --data-dir DIR
        metrics = readme_figures.run_command(command, tmp_path / str(i), None)
        stated = readme_figures.stated_figures(cell)
        assert stated, f"no figure found in the README's words for {command}"
        for place, written in stated.items():
            assert readme_figures.measured(metrics, place, written) == written, (command, place)
            checked += 1
    assert checked >= 4


def readme_commands() -> list[tuple[str, str | None]]:
    """Every ``nnlab`` command in the README's code blocks, with the error line shown after it (if any)."""
    text = (REPO / "README.md").read_text()
    found = []
    for language, block in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if language not in ("", "bash"):
            continue
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].strip().removeprefix("$ ")
            if line.startswith("nnlab "):
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1].rstrip() + " " + lines[i].strip()
                after = lines[i + 1].strip() if i + 1 < len(lines) else ""
                found.append((line.split("  #")[0].split(" > ")[0].strip(),
                              after if after.startswith("error:") else None))
            i += 1
    return found


#: Words of README commands that stand for something the reader supplies, or need more than CI has.
PLACEHOLDERS = ("DIR", "DATA", "RUN_A", "...", "spiral.yaml", "--backend jax", "--executor ray")


def test_every_readme_command_that_runs_offline_does_what_the_readme_says(cli, tmp_path, monkeypatch):
    import shlex
    import shutil

    from nnlab.config import load_config
    from nnlab.datasets.keras_sets import KERAS_SETS

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)  # the README's relative paths (configs/, runs/) as a reader has them
    ran = 0
    for command, error in readme_commands():
        words = shlex.split(command)[1:]
        if any(p in command for p in PLACEHOLDERS):
            continue
        if words[0] in ("train", "kfold", "sweep"):
            if load_config(words[1]).dataset.name in KERAS_SETS:
                continue  # a Keras download: bench/readme_figures.py --data-dir DIR re-measures those
            words += ["--set", "training.epochs=2"]
            if "--trials" in words:  # a search's budget as the README gives it, cut as the epochs are
                at = words.index("--trials") + 1
                words[at] = str(min(int(words[at]), 3))
        result = cli(*words)
        if error is None:
            assert result.exit_code == 0, (command, result.output)
        else:
            assert result.exit_code == 2, (command, result.output)
            shown = " ".join(result.output.split()).replace(str(tmp_path) + "/", "")
            assert shown == error, (command, shown)
        ran += 1
    assert ran >= 6, ran
