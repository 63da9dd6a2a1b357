"""Figures: each drawn from the tables of a synthetic run folder with planted effects, checked
against known answers, byte-stable on a re-run, and skipped (not failed) when their input is absent."""
from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from synthetic_run import DESCRIPTORS, FAILED_CLIP, LAYERS, MODELS, make_run

from audioprobe.errors import ParameterError, StageError
from audioprobe.figures import FIGURES, make_all
from audioprobe.figures.cka import cka_matrix, cka_plot
from audioprobe.figures.contrast import CANNOT_REJECT_MARK, cannot_reject_statement, contrast_map, significance_marks
from audioprobe.figures.descriptors import descriptor_correlations
from audioprobe.figures.heatmap import layer_heatmap
from audioprobe.figures.partition import partition_summary
from audioprobe.figures.profile import domain_profile
from audioprobe.figures.rdm import correlation_rdm, descriptor_rdm, rank_percentiles, rdm_panels, select_clips
from audioprobe.figures.style import REPORT_WIDTH, figure_bytes
from audioprobe.figures.tables import MissingInput, RunTables, headline_scores


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def tables(run):
    return RunTables(run)


@pytest.fixture(scope="module")
def figures(tables):
    return {name: spec.build(tables) for name, spec in FIGURES.items()}


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# ---- every figure: axes, labels, titles; byte-stable files ----------------------------------

@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_has_axes_labels_and_title(figures, name):
    fig = figures[name]
    axes = _data_axes(fig)
    assert axes, f"{name} has no axes"
    assert fig.get_suptitle() or all(ax.get_title() for ax in axes)
    for ax in axes:
        assert ax.get_title(), f"{name}: a panel has no title"
        assert ax.get_xlabel() or fig.get_supxlabel(), f"{name}: panel {ax.get_title()!r} lacks an x label"
        assert ax.get_ylabel() or fig.get_supylabel(), f"{name}: panel {ax.get_title()!r} lacks a y label"
        labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        assert any(labels), f"{name}: panel {ax.get_title()!r} has no tick labels"
        assert ax.has_data(), f"{name}: panel {ax.get_title()!r} is empty"
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    for colorbar in colorbars:
        assert colorbar.get_ylabel() or colorbar.get_xlabel(), f"{name}: colour bar without a label"


#: Pixels a figure is shown at, at most, in the report (CSS max-width 1200px less 2 x 1em padding).
REPORT_PIXELS = 1168
SAVE_DPI = 150


def _smallest_shown_text_px(fig) -> float:
    """Height in screen pixels of the figure's smallest visible text when the report shows it."""
    from matplotlib.text import Text

    fig.canvas.draw()
    scale = min(1.0, REPORT_PIXELS / (fig.get_figwidth() * SAVE_DPI))
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) / 72 * SAVE_DPI * scale


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_text_is_legible_at_the_report_width(figures, name):
    assert _smallest_shown_text_px(figures[name]) >= 8.5


def test_large_runs_stay_legible_at_the_report_width():  # ~4 s
    """The demo's size (10 models, 6 layers, 60 descriptors) drew 5.5-point labels on a 19-inch figure:
    ~4 px in the report. Now at least 8.5 px."""
    rng = np.random.default_rng(0)
    layers = ["logmel", "features.3", "features.7", "features.11", "fc.1", "fc.4"]
    features = [f"descriptor_{i:02d}_name" for i in range(60)]
    models = [(f"{d}-seed{s}", d, s) for d in ("speech", "nonspeech", "mixed") for s in range(3)] + [
        ("random-seed0", "none", 0)]
    scores = pd.DataFrame([{"model": m, "pretrain_domain": d, "seed": s, "layer": layer, "layer_index": i,
                            "feature": f, "value": rng.uniform(-0.2, 0.9)}
                           for m, d, s in models for i, layer in enumerate(layers) for f in features])
    heat = layer_heatmap(scores)
    assert heat.get_figwidth() <= REPORT_WIDTH and _smallest_shown_text_px(heat) >= 8.5
    stats_table = pd.DataFrame([{"contrast": c, "layer": layer, "layer_index": i, "feature": f, "probe": "ridge",
                                 "metric": "r2_pooled", "estimate": rng.normal(0, 0.1), "p_fdr": rng.uniform(),
                                 "p_value": np.nan if i == 0 else 0.5, "status": "identical" if i == 0 else "tested"}
                                for c in ("speech-nonspeech", "speech-mixed", "nonspeech-mixed")
                                for i, layer in enumerate(layers) for f in features])
    contrast = contrast_map(stats_table)
    assert contrast.get_figwidth() <= REPORT_WIDTH and _smallest_shown_text_px(contrast) >= 8.5
    pairs = pd.DataFrame([{"model": a[0], "pretrain_domain": a[1], "seed": a[2], "layer": la, "layer_index": i,
                           "model_b": b[0], "layer_b": lb, "metric": "linear_cka", "value": rng.uniform()}
                          for a in models for i, la in enumerate(layers) for b in models for lb in layers
                          if (a[0], la) < (b[0], lb)])
    cka = cka_plot(pairs)
    assert _smallest_shown_text_px(cka) >= 8.0
    labels = [t.get_text() for t in _data_axes(cka)[0].get_yticklabels()]
    assert len(labels) == 60 and labels[0] == "speech-seed0 · logmel"  # every block's layers named


@pytest.mark.slow  # ~20 s; the fast loop checks in-process byte identity (test_run_lifecycle::
# test_report_embeds_the_figures_already_drawn_for_this_state) and metadata (test_saved_files_carry_no_time_stamp...)
def test_figures_are_byte_identical_on_a_rerun_in_another_process(tmp_path):
    """First through the CLI in a separate process (its own hash seed), then again in this one."""
    run = make_run(tmp_path / "run", n_per_domain=5, n_seeds=2)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-m", "audioprobe", "-q", "figures", str(run.path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = sorted(f"{n}.{f}" for n in FIGURES for f in ("png", "pdf"))
    first = {p.name: p.read_bytes() for p in run.file("figures").iterdir()}
    assert sorted(first) == expected
    shutil.rmtree(run.file("figures"))
    paths = make_all(run)
    assert sorted(p.name for p in paths) == expected
    second = {p.name: p.read_bytes() for p in paths}
    assert [name for name in expected if first[name] != second[name]] == []


@pytest.mark.slow  # starts worker processes (4-6 s): run by README's test command, not the fast loop
def test_figures_drawn_in_worker_processes_equal_those_drawn_in_process(tmp_path):
    """n_jobs=2 draws whole figures in loky workers; the files and the recorded units equal n_jobs=1's."""
    run = make_run(tmp_path / "run", n_per_domain=4, n_seeds=1)
    inline = {p.name: p.read_bytes() for p in make_all(run, formats=("png",), n_jobs=1)}
    units = run.stage_record("figures")["units"]
    shutil.rmtree(run.file("figures"))
    paths = make_all(run, formats=("png",), n_jobs=2, force=True)
    assert [p.name for p in paths] == list(inline)  # registry order, whatever order the workers finish in
    assert [name for name, data in inline.items() if (run.file("figures") / name).read_bytes() != data] == []
    record = run.stage_record("figures")
    assert record["units"] == units and record["summary"]["n_drawn"] == len(units) == len(inline)


@pytest.mark.slow  # starts worker processes (4-6 s): run by README's test command, not the fast loop
def test_worker_processes_draw_new_results_not_the_tables_they_read_before(tmp_path):
    """The loky workers outlive a call and keep the tables they read; new results (a new state) are read afresh."""
    run = make_run(tmp_path / "run", n_per_domain=4, n_seeds=1)
    make_all(run, formats=("png",), n_jobs=2)
    before = (run.file("figures") / "layer_heatmap.png").read_bytes()
    probes = pd.read_parquet(run.path / "probes.parquet")
    probes["value"] = probes["value"] * 0.5
    probes.to_parquet(run.path / "probes.parquet")
    make_all(run, formats=("png",), n_jobs=2)
    after = (run.file("figures") / "layer_heatmap.png").read_bytes()
    make_all(run, names=["layer_heatmap"], formats=("png",), n_jobs=1, force=True)
    assert after != before and after == (run.file("figures") / "layer_heatmap.png").read_bytes()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_figure_that_fails_to_draw_is_named(tmp_path, n_jobs):
    run = make_run(tmp_path / "run", n_per_domain=4, n_seeds=1)
    for meta in run.file("activations").glob("*/*.zarr/zarr.json"):  # only the RDM panels read activations
        meta.write_text("not json")
    with pytest.raises(StageError, match="drawing figure 'rdm_panels' failed"):
        make_all(run, formats=("png",), n_jobs=n_jobs)
    assert run.stage_record("figures")["status"] == "failed"


def test_only_the_named_figures_are_made(tmp_path):
    run = make_run(tmp_path / "run", omit=("activations",), n_per_domain=4, n_seeds=1)
    paths = make_all(run, names=["descriptor_correlations"], formats=("png",))
    assert [p.name for p in paths] == ["descriptor_correlations.png"]
    assert sorted(p.name for p in run.file("figures").iterdir()) == ["descriptor_correlations.png"]


def test_saved_files_carry_no_time_stamp_or_software(figures):
    fig = figures["descriptor_correlations"]
    png = figure_bytes(fig, "png")
    image = Image.open(io.BytesIO(png))
    assert "Software" not in image.info and not any("date" in k.lower() for k in image.info)
    assert image.size[0] > 300 and image.size[1] > 300
    pdf = figure_bytes(fig, "pdf")
    assert pdf.startswith(b"%PDF") and b"/CreationDate" not in pdf and b"/Producer" not in pdf
    with pytest.raises(ParameterError, match="fmt"):
        figure_bytes(fig, "jpg")


def test_absent_inputs_are_skipped_with_a_note(tmp_path, caplog):
    run = make_run(tmp_path / "partial", omit=("stats", "activations", "cka", "partition"), n_per_domain=5,
                   n_seeds=1)
    caplog.set_level(logging.INFO, logger="audioprobe")
    written = {p.name for p in make_all(run, formats=("png",))}
    assert written == {f"{n}.png" for n in ("layer_heatmap", "layer_profiles", "layer_profiles_within",
                                            "descriptor_correlations", "task_profiles", "task_transfer")}
    notes = " ".join(r.getMessage() for r in caplog.records)
    for name in ("domain_contrast", "rdm_panels", "cka_matrix", "variance_partition"):
        assert f"figure {name} skipped" in notes
    bare = make_run(tmp_path / "bare", omit=("probes", "stats", "features", "activations", "failures",
                                             "run_json"), n_per_domain=3)
    with pytest.raises(StageError, match="holds the input of none"):  # a stage that produced nothing fails
        make_all(bare)
    assert bare.stage_record("figures")["status"] == "failed"


def test_unknown_figure_name_is_refused(run):
    with pytest.raises(ParameterError, match="names must be one of"):
        make_all(run, names=["no_such_figure"])


# ---- known answers, figure by figure --------------------------------------------------------

def test_headline_scores_keep_pooled_rows_over_all_clips_only(tables):
    scores = headline_scores(tables.require("probes"))
    assert len(scores) == len(MODELS) * len(LAYERS) * len(DESCRIPTORS)
    assert scores["fold"].isna().all() and (scores["eval_domain"] == "all").all()
    with pytest.raises(MissingInput, match="no ridge rows with metric 'r3'"):
        headline_scores(tables.require("probes"), metric="r3")


def test_heatmap_cells_are_the_pooled_scores(tables, figures):
    scores = headline_scores(tables.require("probes"))
    ax = _data_axes(figures["layer_heatmap"])[0]
    assert ax.get_title().startswith("speech-s0")
    expected = (scores[scores["model"] == "speech-s0"]  # descriptors in rows, layers in columns
                .pivot(index="feature", columns="layer_index", values="value").loc[list(DESCRIPTORS)])
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(expected.shape), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(LAYERS)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(DESCRIPTORS)
    assert len(_data_axes(figures["layer_heatmap"])) == len(MODELS)
    with pytest.raises(ParameterError, match="scores must have at least one row"):
        layer_heatmap(scores.iloc[:0])


def test_domain_profile_interval_is_t_over_seeds_or_the_models_own():
    scores = pd.DataFrame({
        "model": ["a", "b", "c", "r"], "pretrain_domain": ["speech", "speech", "speech", "none"],
        "layer_index": [1, 1, 1, 1], "feature": ["f0"] * 4, "value": [0.2, 0.4, 0.9, 0.1],
        "ci_low": [np.nan, np.nan, np.nan, 0.05], "ci_high": [np.nan, np.nan, np.nan, 0.2]})
    profile = domain_profile(scores).set_index("pretrain_domain")
    values = np.array([0.2, 0.4, 0.9])
    half = 4.302652729911275 * np.sqrt(0.13 / 3)  # t(0.975, df=2) from a t table x (sample sd / sqrt(3))
    low, high = values.mean() - half, values.mean() + half
    np.testing.assert_allclose(profile.loc["speech", ["mean", "ci_low", "ci_high"]].astype(float),
                               [values.mean(), low, high])
    assert profile.loc["speech", "interval"] == "seeds (t)" and profile.loc["speech", "n_models"] == 3
    np.testing.assert_allclose(profile.loc["none", ["mean", "ci_low", "ci_high"]].astype(float), [0.1, 0.05, 0.2])
    with pytest.raises(ParameterError, match="confidence"):
        domain_profile(scores, confidence=95)


def test_profile_shades_only_the_confidence_intervals(figures):
    fig = figures["layer_profiles"]
    for ax in _data_axes(fig):
        assert len(ax.patches) == 0  # no shaded input span: "shaded" means one thing
        bands = [c for c in ax.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
        assert len(bands) == 4  # one interval band per pretraining domain
    assert "shaded band: 95% CI" in fig.legends[0].get_title().get_text()
    assert "shaded" not in fig.get_supxlabel()


def test_within_domain_profiles_draw_r2_within(tables, figures):
    within = headline_scores(tables.require("probes"), metric="r2_within")
    ax = _data_axes(figures["layer_profiles_within"])[DESCRIPTORS.index("hnr")]
    assert ax.get_title() == "hnr"
    speech = [line for line in ax.get_lines() if line.get_label().startswith("speech")][0]
    expected = within[(within["pretrain_domain"] == "speech") & (within["feature"] == "hnr")].groupby(
        "layer_index")["value"].mean()
    np.testing.assert_allclose(speech.get_ydata(), expected.to_numpy())
    np.testing.assert_allclose(speech.get_ydata(), 0.0)  # planted: hnr differs only between clip domains
    assert "within-domain" in figures["layer_profiles_within"].legends[0].get_title().get_text()


def test_profile_draws_one_line_per_domain_with_a_dashed_control(figures):
    ax = _data_axes(figures["layer_profiles"])[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == len(LAYERS)]
    assert len(lines) == 4
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_label().startswith("random weights")
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "logmel"


def test_significance_marks():
    marks = significance_marks(np.array([0.0005, 0.005, 0.03, 0.05, 0.0501, 0.7, np.nan]))
    assert list(marks) == ["***", "**", "*", "*", "", "", ""]  # p <= alpha rejects, as in compare


def _contrast_marks(fig) -> list[tuple[str, str, int, int]]:
    """(contrast, mark, column, row) of every annotated cell of the contrast map."""
    return [(ax.get_title().split("\n")[0], t.get_text(), int(t.get_position()[0]), int(t.get_position()[1]))
            for ax in _data_axes(fig) for t in ax.texts if t.get_text()]


def test_contrast_map_stars_the_significant_cells_and_hatches_the_untested_input(tables, figures):
    stats_table = tables.require("stats")  # written by the real compare stage (Student t, 2 vs 2 seeds)
    fig = figures["domain_contrast"]
    axes = _data_axes(fig)
    assert len(axes) == stats_table["contrast"].nunique()
    rows = [t.get_text() for t in axes[0].get_yticklabels()]
    assert rows == [*DESCRIPTORS, "all descriptors"]
    columns = [t.get_text() for t in axes[0].get_xticklabels()]
    assert columns == [*LAYERS, "all layers"]  # mixed-model rows (layer "all") in their own last column
    mesh = np.asarray(axes[0].collections[0].get_array()).reshape(len(rows), -1)
    first = stats_table[stats_table["contrast"] == "speech-nonspeech"]
    overall = first[(first["layer"] == "all") & (first["feature"] == "all")]["estimate"].item()
    assert mesh[-1, -1] == pytest.approx(overall) and not np.isfinite(mesh[-1, 0])
    # the input layer is identical for every model: not coloured as "no difference" but hatched, with a legend
    identical = first[first["layer"] == "logmel"]
    assert (identical["status"] == "identical").all() and identical["p_value"].isna().all()
    assert not np.isfinite(mesh[:len(DESCRIPTORS), 0]).any()
    hatched = [p for p in axes[0].patches if p.get_hatch() == "////"]
    assert sorted((int(p.get_x()), int(p.get_y())) for p in hatched) == [(0, i) for i in range(len(DESCRIPTORS))]
    legend = fig.legends[0]
    assert any("identical for every model" in t.get_text() for t in legend.get_texts())
    # stars exactly where p_fdr is at most 0.05, the planted speech > nonspeech f0 cell at fc1 among them
    marks = _contrast_marks(fig)
    expected = {(c, LAYERS.index(layer) if layer != "all" else len(LAYERS),
                 DESCRIPTORS.index(feature) if feature != "all" else len(DESCRIPTORS))
                for c, layer, feature in stats_table.loc[stats_table["p_fdr"] <= 0.05,
                                                         ["contrast", "layer", "feature"]].itertuples(index=False)}
    assert {(c, x, y) for c, _, x, y in marks} == expected
    assert ("speech-nonspeech", LAYERS.index("fc1"), DESCRIPTORS.index("f0_mean")) in expected
    assert "CANNOT REJECT" not in legend.get_title().get_text()  # the t-test can reject at 2 vs 2 seeds
    assert "fdr_bh" in fig.get_supxlabel()


def test_contrast_map_says_where_the_design_cannot_reject(tmp_path):
    """An exact permutation test of 2 vs 2 seeds (6 relabellings, smallest p 1/3) can never reject: the
    figure says so in its title and marks every tested cell, and the caption and report say so too."""
    run = make_run(tmp_path / "run", n_per_domain=4, seed_test="permutation",
                   omit=("activations", "cka", "partition"))
    tables = RunTables(run)
    stats_table = tables.require("stats")
    tested = stats_table["status"].isin(["tested", "cannot_reject"])
    blocked = stats_table["status"] == "cannot_reject"
    assert blocked.sum() == 3 * 4 * (len(LAYERS) - 1)  # every layer cell but the input's
    assert stats_table.loc[blocked, "smallest_p"].round(3).unique().tolist() == [0.333]
    fig = FIGURES["domain_contrast"].build(tables)
    title = fig.legends[0].get_title().get_text().replace("\n", " ")
    assert f"{blocked.sum()} of {tested.sum()} tested cells CANNOT REJECT (smallest attainable p 0.333)" in title
    assert "not evidence of no difference" in title
    circles = [m for m in _contrast_marks(fig) if m[1] == CANNOT_REJECT_MARK]
    assert len(circles) == blocked.sum()
    assert any("cannot reject" in t.get_text() for t in fig.legends[0].get_texts())
    caption = FIGURES["domain_contrast"].caption(tables)
    assert cannot_reject_statement(stats_table) in caption
    assert cannot_reject_statement(stats_table.assign(status="tested")) == ""


def test_rdms_match_rsatoolbox_and_pdist():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    data = np.random.default_rng(1).standard_normal((7, 12))
    oracle = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(data), method="correlation").get_matrices()[0]
    np.testing.assert_allclose(correlation_rdm(data), oracle, atol=1e-12)
    values = np.array([1.0, 4.0, np.nan, 2.5])
    rdm = descriptor_rdm(values)
    np.testing.assert_allclose(rdm[[0, 0, 1], [1, 3, 3]], [3.0, 1.5, 1.5])
    assert np.isnan(rdm[2]).all()
    np.testing.assert_allclose(descriptor_rdm(values[[0, 1, 3]]), squareform(pdist(values[[0, 1, 3], None],
                                                                                  "cityblock")))
    with pytest.raises(ParameterError, match="activations must have shape"):
        correlation_rdm(np.ones(5))


def test_rank_percentiles():
    rdm = np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0]], dtype=float)
    out = rank_percentiles(rdm)
    np.testing.assert_allclose(out, [[0, 100, 0], [100, 0, 50], [0, 50, 0]])
    rdm[2, 0] = rdm[0, 2] = np.nan
    assert np.isnan(rank_percentiles(rdm)[0, 2]) and rank_percentiles(rdm)[0, 1] == 100


def test_select_clips_sorts_by_domain_and_drops_failures(tables):
    clips = tables.require("clips")
    subset = select_clips(clips, n_per_domain=3, exclude=[FAILED_CLIP])
    assert list(subset["domain"]) == ["speech"] * 3 + ["music"] * 3 + ["environmental"] * 3
    assert FAILED_CLIP not in set(subset["clip_id"])
    assert (clips["clip_id"].iloc[subset["row"]].to_numpy() == subset["clip_id"].to_numpy()).all()
    with pytest.raises(ParameterError, match="n_per_domain"):
        select_clips(clips, n_per_domain=1)


def test_rdm_panels_show_layers_and_descriptors_without_failed_clips(tables, figures):
    axes = _data_axes(figures["rdm_panels"])
    titles = [ax.get_title() for ax in axes]
    assert titles[:4] == ["layer logmel", "layer conv1", "layer conv3", "layer fc1"]  # names as in every figure
    assert titles[-1].endswith("(descriptor)")
    n = 3 * 8 - 1  # eight clips per domain, one failed
    assert axes[0].images[0].get_array().shape == (n, n)
    layer = np.asarray(axes[0].images[0].get_array(), dtype=float)
    assert np.isfinite(layer).all() and np.allclose(layer, layer.T)
    with pytest.raises(ParameterError, match="must have shape"):
        rdm_panels({"x": np.zeros((3, 3))}, ["a", "b"])


def test_cka_matrix_is_symmetric_and_ordered_by_domain(tables):
    probes = tables.require("probes")
    pairs = probes[(probes["probe"] == "cka") & (probes["metric"] == "linear_cka") & probes["model_b"].notna()]
    matrix = cka_matrix(pairs)  # pairs are stored once (a < b), without the diagonal
    assert matrix.shape == (len(MODELS) * len(LAYERS),) * 2
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert list(dict.fromkeys(matrix.index.get_level_values("model"))) == [m[0] for m in MODELS]
    assert list(matrix.index.get_level_values("layer")[:len(LAYERS)]) == list(LAYERS)
    row = pairs[(pairs["model"] == "speech-s0") & (pairs["layer"] == "conv1") & (pairs["model_b"] == "mixed-s1")
                & (pairs["layer_b"] == "fc1")]
    assert matrix.loc[("mixed-s1", "fc1"), ("speech-s0", "conv1")] == pytest.approx(row["value"].iloc[0])


def test_descriptor_correlations_match_scipy_spearman(tables):
    features = tables.require("features")
    rho, n = descriptor_correlations(features)
    assert list(rho.index) == list(DESCRIPTORS)
    both = features[["f0_mean", "hnr"]].dropna()
    assert rho.loc["f0_mean", "hnr"] == pytest.approx(stats.spearmanr(both["f0_mean"], both["hnr"])[0])
    assert n.loc["f0_mean", "hnr"] == len(both) and n.loc["hnr", "hnr"] == len(features)
    assert rho.loc["f0_mean", "spectral_centroid"] > 0.7  # planted
    with pytest.raises(ParameterError, match="at least two descriptor columns"):
        descriptor_correlations(features[["clip_id", "hnr"]])


def test_partition_summary_derives_shared_variance(tables):
    probes = tables.require("probes")
    rows = probes[(probes["probe"] == "partition") & (probes["model"] == "speech-s0") & probes["fold"].isna()]
    summary = partition_summary(rows).set_index(["layer_index", "part"])
    unique = rows[(rows["metric"] == "unique_r2") & (rows["layer_index"] == 2)]["value"]
    full = rows[(rows["metric"] == "r2_full") & (rows["layer_index"] == 2)]["value"].item()
    assert len(unique) == 3 and unique.sum() > 0.1
    assert summary.loc[(2, "shared"), "value"] == pytest.approx(full - unique.sum())
    assert summary.loc[(2, "pitch"), "kind"] == "unique"
    assert "r2_without" not in set(summary.index.get_level_values("part"))
    odd = rows.assign(metric=rows["metric"].replace({"unique_r2": "banded_weight"}))
    kinds = set(partition_summary(odd)["kind"])
    assert kinds == {"full", "other"}  # unknown metrics kept as lines, no shared part invented


def test_figures_help_names_every_registered_figure(capsys):
    """`audioprobe figures --help` lists every name --only accepts (it missed the task figures)."""
    from audioprobe.cli import main
    from audioprobe.figures.registry import FIGURES

    with pytest.raises(SystemExit):
        main(["figures", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert [name for name in FIGURES if name not in text] == []
