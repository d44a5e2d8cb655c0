"""Hypothesis mutates valid configs; every result is accepted or refused cleanly.

The contract: `nnlab validate` exits 0, or exits 2 with one message that starts
with "error:" and names the file; it never raises or prints a traceback.
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from malformed.make_corpus import BASE, DIABETES

BASES = [yaml.safe_load(BASE), yaml.safe_load(DIABETES)]

values = st.one_of(
    st.integers(min_value=-10**13, max_value=10**13), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
    st.sampled_from(["Dense", "relu", "../x", "full", "adam", "mse", "accuracy", "spiral", "-1", "1e9"]),
)


def paths(node, prefix=()):
    """Every key path in a config's data."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, prefix + (i,))


def parent_of(data, path):
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_configs(draw):
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        targets = [p for p in paths(data) if p]
        path = draw(st.sampled_from(targets))
        parent = parent_of(data, path)
        action = draw(st.sampled_from(["replace", "delete", "add_key"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_configs())
def test_mutated_configs_are_accepted_or_refused_cleanly(cli, tmp_path, data):
    path = tmp_path / "mutant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = cli("validate", path)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and "mutant.yaml" in result.stderr
        assert "Traceback" not in result.stderr
