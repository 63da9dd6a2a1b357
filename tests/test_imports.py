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


def test_a_features_worker_runs_a_clip_without_importing_pandas_or_joblib(tmp_path):
    """What a worker process receives for the features stage (the failure-recording call and the per-clip
    function, pickled as joblib and dask send them) unpickles and runs in a fresh interpreter without loading
    pandas or joblib: each worker starts ~0.5 s sooner (a 300-clip features stage lasts ~6 s on 2 cores)."""
    import pickle
    from functools import partial

    import numpy as np
    import soundfile as sf

    from audioprobe.features.config import AnalysisConfig
    from audioprobe.features.describe import features_for_clip
    from audioprobe.workers import call_safely

    path = tmp_path / "tone.wav"
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000), 16000)
    payload = pickle.dumps((call_safely, partial(features_for_clip, names=["f0_median", "rms_median_dbfs"],
                                                 config=AnalysisConfig()), {"clip_id": "a", "audio_path": str(path)}))
    code = ("import pickle, sys\n"
            "call, func, row = pickle.loads(sys.stdin.buffer.read())\n"
            "status, out = call(func, row)\n"
            "print(status, round(out['f0_median']), sorted(m for m in ('pandas', 'joblib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["ok", "220", "[]"]
