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
