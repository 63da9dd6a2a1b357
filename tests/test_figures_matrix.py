"""The heat-map cell grid (figures/matrix.py) against seaborn.heatmap on the same input, and saving a figure with
one layout for all its formats (figures/style.py::save_figure)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from audioprobe.errors import ParameterError
from audioprobe.figures.matrix import matrix_heatmap, text_color
from audioprobe.figures.style import figure_bytes, new_figure, save_figure

sns = pytest.importorskip("seaborn")


def _values() -> np.ndarray:
    values = np.random.default_rng(3).uniform(-0.4, 1.0, size=(4, 3))
    values[1, 2] = np.nan  # a blank cell
    return values


def _texts(ax) -> list[tuple[float, float, str, str]]:
    return sorted((t.get_position()[0], t.get_position()[1], t.get_text(), str(t.get_color())) for t in ax.texts
                  if t.get_text())


@pytest.mark.parametrize("cmap, vmin, vmax", [("viridis", 0.0, 0.8), ("RdBu_r", -1.0, 1.0)])
def test_cells_ticks_and_written_values_match_seaborn(cmap, vmin, vmax):
    values = _values()
    mask = np.zeros(values.shape, dtype=bool)
    mask[0, 2] = True
    rows, columns = ["a", "b", "c", "d"], ["l0", "l1", "l2"]
    ours, theirs = Figure().add_subplot(), Figure().add_subplot()
    mesh = matrix_heatmap(ours, values, xticklabels=columns, yticklabels=rows, vmin=vmin, vmax=vmax, cmap=cmap,
                          mask=mask, annot=True, fmt=".2f", linewidths=0.4)
    sns.heatmap(pd.DataFrame(values, index=rows, columns=columns), ax=theirs, vmin=vmin, vmax=vmax, cmap=cmap,
                mask=mask, annot=True, fmt=".2f", linewidths=0.4, cbar=False)
    reference = theirs.collections[0]
    np.testing.assert_array_equal(np.ma.getmaskarray(mesh.get_array()), np.ma.getmaskarray(reference.get_array()))
    np.testing.assert_allclose(mesh.get_array().compressed(), reference.get_array().compressed())
    np.testing.assert_allclose(mesh.to_rgba(mesh.get_array()), reference.to_rgba(reference.get_array()))
    assert ours.get_xlim() == theirs.get_xlim() and ours.get_ylim() == theirs.get_ylim()  # row 0 at the top
    np.testing.assert_allclose(ours.get_xticks(), theirs.get_xticks())
    np.testing.assert_allclose(ours.get_yticks(), theirs.get_yticks())
    assert [t.get_text() for t in ours.get_yticklabels()] == rows
    assert [t.get_text() for t in ours.get_xticklabels()] == columns
    assert _texts(ours) == _texts(theirs)  # same values, places and text colours; none in blank cells
    assert len(_texts(ours)) == values.size - 2


def test_marks_are_written_where_given_and_nowhere_else():
    values = np.zeros((2, 2))
    marks = np.array([["*", ""], ["", "***"]], dtype=object)
    ax = Figure().add_subplot()
    matrix_heatmap(ax, values, xticklabels=["x", "y"], yticklabels=["r", "s"], vmin=-1, vmax=1, cmap="RdBu_r",
                   annot=marks)
    assert [(int(x), int(y), text) for x, y, text, _ in _texts(ax)] == [(0, 0, "*"), (1, 1, "***")]


def test_text_colour_follows_the_cell_luminance_as_seaborn():
    from seaborn.utils import relative_luminance

    for rgba in [(1, 1, 1, 1), (0, 0, 0, 1), (0.267, 0.005, 0.329, 1), (0.993, 0.906, 0.144, 1), (0.5, 0.5, 0.5, 1)]:
        assert text_color(rgba) == (".15" if relative_luminance(rgba) > 0.408 else "w")
    assert text_color((1, 1, 1)) == ".15" and text_color((0, 0, 0)) == "w"


def test_bad_shapes_are_refused_with_the_shapes_named():
    ax = Figure().add_subplot()
    with pytest.raises(ParameterError, match=r"values must have shape \(n_rows, n_columns\), got shape \(3,\)"):
        matrix_heatmap(ax, np.zeros(3), xticklabels=["a"], yticklabels=["b"], vmin=0, vmax=1)
    with pytest.raises(ParameterError, match="must have 2 and 3 entries.*got 1 and 3"):
        matrix_heatmap(ax, np.zeros((3, 2)), xticklabels=["a"], yticklabels=["b", "c", "d"], vmin=0, vmax=1)
    with pytest.raises(ParameterError, match=r"mask must have the shape of values \(1, 1\), got \(2, 1\)"):
        matrix_heatmap(ax, np.zeros((1, 1)), xticklabels=["a"], yticklabels=["b"], vmin=0, vmax=1,
                       mask=np.zeros((2, 1), bool))
    with pytest.raises(ParameterError, match=r"annot must have the shape of values \(1, 1\)"):
        matrix_heatmap(ax, np.zeros((1, 1)), xticklabels=["a"], yticklabels=["b"], vmin=0, vmax=1,
                       annot=np.array([["*", "*"]]))


def _laid_out_figure() -> Figure:
    fig = new_figure(width=4.0, height=3.0)
    for i, ax in enumerate(fig.subplots(1, 2)):
        ax.plot([0, 1], [i, 2])
        ax.set_ylabel("a long label that constrained layout must make room for")
    return fig


def test_save_lays_the_figure_out_once_for_all_formats(tmp_path, monkeypatch):
    fig = _laid_out_figure()
    engine = fig.get_layout_engine()
    calls = []
    execute = type(engine).execute
    monkeypatch.setattr(type(engine), "execute", lambda self, figure: (calls.append(1), execute(self, figure)))
    default = [ax.get_position().bounds for ax in fig.axes]
    paths = save_figure(fig, tmp_path, "f", formats=("png", "pdf"))
    assert [p.name for p in paths] == ["f.png", "f.pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert len(calls) == 1  # the PNG's layout serves the PDF
    assert [ax.get_position().bounds for ax in fig.axes] != default  # and it was applied
    assert fig.get_layout_engine() is engine  # the figure keeps its layout engine


def test_saved_files_are_what_a_fresh_figure_draws(tmp_path):
    """The report draws a figure that has no file for this state with figure_bytes; it must equal the file."""
    paths = save_figure(_laid_out_figure(), tmp_path, "f")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in save_figure(_laid_out_figure(), tmp_path, "f")]
    assert paths[0].read_bytes() == figure_bytes(_laid_out_figure(), "png")
