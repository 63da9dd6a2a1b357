"""Lazy package exports: names imported from their submodule on first use.

Stage packages export their API this way so that ``audioprobe --help`` (which imports every
stage's ``cli`` module) does not load scipy, scikit-learn or statsmodels.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : dict
        Exported name -> submodule (relative to the package) that defines it.
    """
    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(f".{where[name]}", package)
        except AttributeError as exc:  # would read as "no attribute {name}" to the importer: say what broke
            raise ImportError(f"importing {package}.{where[name]} failed: {exc!r}") from exc
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
