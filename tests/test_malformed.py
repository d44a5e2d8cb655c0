"""Every malformed config in tests/malformed/ is refused with one clear message and exit code 2.

The contract for each: exit code 2, one message on stderr that names the file and
contains the phrase expected.yaml gives for it, no traceback, no run folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CORPUS = Path(__file__).resolve().parent / "malformed"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_the_corpus_is_large_and_complete():
    files = sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml")
    assert len(files) >= 100
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_config_is_refused(cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # relative data paths in the corpus must not resolve to anything
    runs = tmp_path / "runs"
    result = cli("train", CORPUS / name, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    message = result.stderr
    assert message.startswith("error: "), message
    assert name in message, message
    assert EXPECTED[name] in message, message
    assert "Traceback" not in message and result.stdout == ""
    assert not runs.exists() or not any(runs.iterdir()), "a refused config leaves no run folder"
