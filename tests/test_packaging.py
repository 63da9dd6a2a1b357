"""A regular (non-editable) install ships one top-level package, `audioprobe`, with the stage subpackages."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_has_only_the_audioprobe_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("audioprobe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"audioprobe"}
    for sub in ("corpora", "features", "models", "pretrain", "probes", "analysis", "figures"):
        assert f"audioprobe/{sub}/__init__.py" in names
