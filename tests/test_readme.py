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
