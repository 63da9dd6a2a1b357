"""Layout of audioprobe.features (issue 17): config -> signal -> clip -> descriptors -> registry, without cycles.

Every module imports alone (each in a clean set of audioprobe modules), no module hides an import behind
``TYPE_CHECKING``, the package-internal import graph is acyclic and follows the layer order, and module sizes stay
readable (median under 250 lines, none over 500).
"""
from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

FEATURES = Path(__file__).resolve().parent.parent / "features"
#: The layers in import order; a module may import from its own layer or an earlier one only.
LAYERS = {"config": 0, "signal": 1, "clip": 2, "descriptors": 3, "registry": 4, "describe": 5, "meta": 5, "extract": 6,
          "cli": 7}


def _modules() -> dict[str, Path]:
    """Dotted name below audioprobe.features -> file, for every module of the package."""
    out = {}
    for path in sorted(FEATURES.rglob("*.py")):
        parts = path.relative_to(FEATURES).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _internal_imports(name: str, path: Path) -> set[str]:
    """Modules of audioprobe.features imported at module level by ``name`` (relative imports resolved)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            if node.level - 1 > len(package):
                continue  # above audioprobe.features (audioprobe core modules)
            target = [*base, *(node.module.split(".") if node.module else [])]
            for alias in node.names:
                full = ".".join([*target, alias.name])
                found.add(full if full in _modules() else ".".join(target))
    return {m for m in found if m in _modules() and m != name}


def _layer(name: str) -> int:
    return LAYERS[name.split(".")[0]]


def test_every_features_module_imports_alone():
    """Each module is imported with no other audioprobe module loaded (third-party modules stay cached; a cycle
    inside the package is what breaks an import alone)."""
    names = [f"audioprobe.features.{m}" if m else "audioprobe.features" for m in _modules()]
    code = ("import importlib, sys\n"
            "failed = []\n"
            f"for name in {names!r}:\n"
            "    for loaded in [m for m in sys.modules if m == 'audioprobe' or m.startswith('audioprobe.')]:\n"
            "        del sys.modules[loaded]\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception as exc:\n"
            "        failed.append(f'{name}: {exc!r}')\n"
            "print('\\n'.join(failed))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_type_checking_imports_and_imports_follow_the_layers():
    """No TYPE_CHECKING block anywhere in features/; every package-internal import goes to the same or an earlier
    layer (config -> signal -> clip -> descriptors -> registry -> describe, meta -> extract -> cli), so the graph
    has no cycle."""
    modules = _modules()
    for name, path in modules.items():
        assert "TYPE_CHECKING" not in path.read_text(), name
        if not name:
            continue
        for target in _internal_imports(name, path):
            if target:
                assert _layer(target) <= _layer(name), f"{name} imports {target} from a later layer"
    # within a layer, the import graph is acyclic (depth-first search over the package's own imports)
    graph = {name: _internal_imports(name, path) for name, path in modules.items() if name}
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert state.get(node) != 1, f"import cycle: {' -> '.join((*trail, node))}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph.get(node, ()):
            visit(nxt, (*trail, node))
        state[node] = 2

    for node in graph:
        visit(node, ())


def test_module_sizes():
    """Median module under 250 lines, none over 500 (package __init__ files excluded from the median)."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()
             if path.name != "__init__.py"}
    assert statistics.median(sizes.values()) < 250
    assert max(sizes.values()) <= 500, max(sizes, key=sizes.get)
