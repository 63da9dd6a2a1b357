"""Every module of the package imports alone, in a fresh interpreter: no import cycle, no module that only
imports after another has been imported."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

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


#: third-party libraries loaded before forking, so that each child only imports audioprobe itself
_THIRD_PARTY = ("numpy", "scipy.stats", "scipy.signal", "pandas", "sklearn.linear_model", "statsmodels.api",
                "matplotlib.pyplot", "seaborn", "torch", "zarr", "parselmouth", "soundfile", "soxr", "joblib",
                "threadpoolctl", "filelock", "tqdm")

_CHILD = """
import importlib, os, sys
for lib in {third_party!r}:
    importlib.import_module(lib)
assert not any(m == "audioprobe" or m.startswith("audioprobe.") for m in sys.modules)
failed = []
for name in {names!r}:
    pid = os.fork()
    if pid == 0:  # a child with no audioprobe module loaded: import this one module alone
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"{{name}}: {{type(exc).__name__}}: {{exc}}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(name)
print("FAILED", failed)
"""


def test_every_module_imports_alone():
    """Each module imported alone, in a forked interpreter where no audioprobe module was loaded yet: a module
    whose import needs another imported first, or an import cycle, fails here. Third-party libraries are
    loaded once before forking (they are not what this test checks), which keeps it to seconds."""
    code = _CHILD.format(third_party=_THIRD_PARTY, names=_modules())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "FAILED []", out.stdout
