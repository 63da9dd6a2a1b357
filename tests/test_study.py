"""Study files: validation, defaults, and the example that ships with the repository."""
from __future__ import annotations

from pathlib import Path

import pytest

from audioprobe.errors import ParameterError
from audioprobe.study import SECTIONS, load_study

ROOT = Path(__file__).resolve().parent.parent


def test_example_study_loads_with_paths_resolved():
    config = load_study(ROOT / "study.example.toml")
    assert config["study"]["output"] == str(ROOT / "runs" / "example")
    assert config["study"]["manifest"] is None                      # the shipped corpus
    assert [m["spec"] for m in config["models"]][-1] == "byola-v1:random"
    assert config["probes"]["cv"] == 5 and set(config) == set(SECTIONS) | {"models", "tasks"}


def test_defaults_fill_missing_keys():
    config = load_study({"models": [{"spec": "byola-v1:random"}]})
    assert config["features"]["pitch"] == "praat" and config["compare"]["unit"] == "auto"
    assert config["models"] == [{"spec": "byola-v1:random", "name": None, "domain": None, "seed": None}]


@pytest.mark.parametrize("study,message", [
    ({"models": [{"spec": "x"}], "prob": {}}, r"unknown section\(s\) \['prob'\]"),
    ({"models": [{"spec": "x"}], "probes": {"folds": 3}}, r"unknown key\(s\) \['folds'\] in \[probes\]"),
    ({}, "no \\[\\[models\\]\\]"),
    ({"models": [{"name": "a"}]}, "entry 0 has no spec"),
])
def test_bad_studies_are_refused_with_what_is_wrong(study, message):
    with pytest.raises(ParameterError, match=message):
        load_study(study)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[study\nname=")
    with pytest.raises(ParameterError, match="not valid TOML"):
        load_study(path)
