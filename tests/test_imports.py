"""Every module of the package imports alone, in a fresh interpreter: no import cycle, no module that only
imports after another has been imported."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

def _modules() -> list[str]:
    """Every module of the packages pyproject.toml ships (the stage subpackages live in their own folders)."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    names = set(packages)
    for package in packages:
        path = importlib.import_module(package).__path__
        names |= {f"{package}.{info.name}" for info in pkgutil.iter_modules(path)}
    return sorted(names)


def test_the_package_has_the_stage_subpackages():
    names = set(_modules())
    assert {"audioprobe.features", "audioprobe.models", "audioprobe.probes", "audioprobe.analysis",
            "audioprobe.figures", "audioprobe.pretrain", "audioprobe.corpora"} <= names
    assert len(names) > 50


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """One interpreter per module: a module whose import needs another imported first fails here."""
    failed = []
    for name in _modules():
        out = subprocess.run([sys.executable, "-c", f"import importlib; importlib.import_module({name!r})"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            failed.append(f"{name}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    assert not failed, "modules that do not import alone:\n" + "\n".join(failed)
