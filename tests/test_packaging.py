"""A regular (non-editable) install ships one top-level package, `audioprobe`, with every module of the stage
subpackages; the wheel is built from a temporary copy of the source tree, which stays untouched (no build/)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def _source_modules() -> set[str]:
    """Wheel paths of every module of the source tree: ``audioprobe/<sub>/.../<name>.py``."""
    names = set()
    for package, folder in PACKAGE_DIRS.items():
        prefix = package.replace(".", "/")
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                names.add(f"{prefix}/{relative.as_posix()}")
    return names


def test_wheel_has_only_the_audioprobe_package_and_every_module(tmp_path):
    build_before = (ROOT / "build").exists()
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in set(PACKAGE_DIRS.values()):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("audioprobe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"audioprobe"}
    missing = sorted(_source_modules() - names)
    assert not missing, f"modules of the source tree missing from the wheel (pyproject packages): {missing}"
    assert (ROOT / "build").exists() == build_before  # the source tree got no build/ folder
