"""Tasks in study files and the demo configuration."""
from __future__ import annotations

from pathlib import Path

import pytest

from audioprobe.errors import ParameterError
from audioprobe.manifest import default_manifest_path, read_manifest
from audioprobe.probes.driver import resolve_tasks
from audioprobe.study import load_study

ROOT = Path(__file__).resolve().parent.parent


def test_example_study_declares_tasks_on_shipped_columns():
    config = load_study(ROOT / "study.example.toml")
    assert config["tasks"] == [{"name": "domain", "column": "domain", "group": "group"},
                               {"name": "instrument", "column": "instrument", "group": "clip_id"},
                               {"name": "source_category", "column": "source_category", "group": "group"}]
    assert resolve_tasks(config["tasks"], read_manifest(default_manifest_path())) == tuple(config["tasks"])
    assert config["probes"]["task_permutations"] == 100


def test_tasks_default_to_none_and_bad_tasks_are_refused():
    assert load_study({"models": [{"spec": "x"}]})["tasks"] == []
    for tasks, message in (([{"name": "a"}], "needs a name and a column"),
                           ([{"name": "a", "column": "b", "folds": 3}], r"unknown key\(s\) \['folds'\] in \[tasks\]"),
                           ([{"name": "a", "column": "b"}, {"name": "a", "column": "c"}], "must be unique")):
        with pytest.raises(ParameterError, match=message):
            load_study({"models": [{"spec": "x"}], "tasks": tasks})


def test_demo_runs_at_least_three_tasks_on_the_shipped_corpus():
    pytest.importorskip("torch")
    from audioprobe.study import demo_study

    try:
        config = load_study(demo_study())
    except ParameterError as exc:  # a source tree without models/weights/
        pytest.skip(str(exc))
    assert "task" in config["probes"]["probes"] and len(config["tasks"]) >= 3
    clips = read_manifest(default_manifest_path())
    for task in resolve_tasks(config["tasks"], clips):
        assert clips[task["column"]].dropna().nunique() >= 3, task
