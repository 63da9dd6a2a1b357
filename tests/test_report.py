"""The HTML report: self-contained, holds every section with the run's recorded facts, and renders in
a real browser (headless Chromium, skipped when absent)."""
from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synthetic_run import DESCRIPTORS, FAILED_CLIP, LAYERS, MIN_SAMPLES, MODELS, make_run

from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.figures import FIGURES, Report, build_report
from audioprobe.figures.blocks import block_of
from audioprobe.figures.contrast import cannot_reject_statement
from audioprobe.figures.methods import find_parameter, methods_paragraph, recorded_parameters
from audioprobe.figures.report_tables import (
    best_layer_overview,
    best_layers,
    contrast_counts,
    control_overview,
    control_relative,
    domain_layer_table,
    pooled_within_overview,
    pooled_within_table,
    task_table,
    transfer_table,
)
from audioprobe.figures.run_report import SECTIONS
from audioprobe.figures.tables import RunTables, headline_scores
from audioprobe.runstore import Run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if shutil.os.path.exists("/usr/bin/chromium")
                                        else None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "run", n_per_domain=6)


@pytest.fixture(scope="module")
def page(run):
    assert main(["-q", "report", str(run.path)]) == 0
    return run.file("report.html").read_text(encoding="utf-8")


def test_report_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, flags=re.I)
    assert "@import" not in page and not re.search(r"url\(", page)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(FIGURES)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert image.format == "PNG" and min(image.size) > 200
    for link in re.findall(r'href="([^"]+)"', page):
        assert link.startswith("#") and f'id="{link[1:]}"' in page


def test_report_holds_every_section_and_the_recorded_facts(run, page):
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    text = html.unescape(page)
    info = run.info
    # the compare stage computed results last: its environment is the run's
    assert info["environment"]["git_hash"] in text and "python" in text and info["environment"]["host"] in text
    assert "version: numpy" in text and "2025-01-01T10:05:00+00:00" in text
    assert FAILED_CLIP in text and "clip is silent <all zeros>" in text  # escaped in the page, readable
    assert "<all zeros>" not in page
    stats = run.read_table("stats.parquet")
    significant = int((stats["p_fdr"] <= 0.05).sum())
    assert "Best layer per descriptor" in text and "Significant cells (p_fdr <= 0.05)" in text
    assert f"{significant} of {int(stats['p_value'].notna().sum())} tests (of {len(stats)} contrast" in text
    assert run.file("stats_summary.txt").read_text().splitlines()[0] in text
    for model, *_ in MODELS:
        assert model in text
    assert "<td>probe</td><td>config.n_permutations</td><td>200</td>" in page
    assert "<td>compare</td><td>config.n_permutations</td><td>10000</td>" in page


def test_methods_paragraph_states_what_each_stage_recorded(run):
    """Every number of the paragraph comes from run.json's stage configs or the saved tables."""
    text = methods_paragraph(RunTables(run))
    stages = run.info["stages"]
    probe, compare = stages["probe"]["config"], stages["compare"]["config"]
    analysis = stages["features"]["config"]["analysis"]
    stats = run.read_table("stats.parquet")
    facts = [
        "18 clips", "6 speech", "probed on a log scale: f0_mean, spectral_centroid",
        f"Pitch tracker: {analysis['pitch']}", f"sr {analysis['sr']}", f"hop_length {analysis['hop_length']}",
        "random (byola-v1:random-weights, seed none, random-weights)", "speech-s1 (byola-v1:speech-s1, seed 1)",
        f"clips shorter than {MIN_SAMPLES} samples (0.95 s at 16000 Hz) were zero-padded",
        "Pooling of each layer's output over time (layers.csv): mean",
        f"Probes (probe stage): {', '.join(probe['probes'])}",
        f"cross-validation folds (grouped by the manifest's group): {probe['cv']}",
        f"activation scaling: {probe['scaling']}", f"alpha grid: {probe['alpha_grid']}",
        f"max_missing: {probe['max_missing']:g}", f"correlation: {probe['rsa_method']}",
        f"layer RDM metric between clips: {probe['rdm_metric']}",
        f"clip-label permutations for p: {probe['n_permutations']}",
        f"bootstraps over groups for intervals: {probe['n_bootstraps']} (no intervals)",
        f"principal components per layer: {probe['n_components']}",
        "tasks: clip_domain (labels domain, grouped by group); relative C grid: 0.01, 1, 100",
        f"group-respecting label permutations for p: {probe['task_permutations']}.",
        f"alpha {compare['alpha']:g}; seed test: {compare['seed_test']}", "unit of inference: seed",
        # compare ran t-tests and mixed models: its recorded permutation and bootstrap counts were not used
        f"not used by these tests: n_permutations {compare['n_permutations']}, n_bootstraps {compare['n_bootstraps']}",
        f"{int((stats['status'] == 'identical').sum())} cells are identical for every model by construction (logmel)",
    ]
    for test, n in stats.loc[stats["p_value"].notna(), "test"].value_counts().items():
        facts.append(f"{test} ({n} test{'s' if n > 1 else ''})")
    assert probe["task_permutations"] != probe["n_permutations"]  # the task count is told apart from the RSA one
    for fact in facts:
        assert fact in text, fact
    for descriptor in DESCRIPTORS:
        assert descriptor in text
    assert "Permutations: 10000" not in text and "Bootstrap resamples" not in text  # the old misreport


def test_methods_of_a_run_without_task_permutations_state_the_count_the_task_probe_used(run, tmp_path):
    """A run recorded before the task probe had its own default (task_permutations null) used n_permutations."""
    old = Run(shutil.copytree(run.path, tmp_path / "run"))
    old.update_info(lambda info: info["stages"]["probe"]["config"].update(task_permutations=None))
    probe = old.info["stages"]["probe"]["config"]
    text = methods_paragraph(RunTables(old))
    assert (f"group-respecting label permutations for p: {probe['n_permutations']} (the probe stage's "
            "n_permutations)." in text)


def test_report_methods_say_which_figure_shows_which_score(page):
    text = html.unescape(page)
    methods = text[text.index('<section id="methods">'):text.index('<section id="figures">')]
    pooled = methods[methods.index("it is the score of: "):].split(".")[0]
    for name in ("layer_heatmap", "layer_profiles", "domain_contrast"):
        assert FIGURES[name].title in pooled
    assert FIGURES["layer_profiles_within"].title not in pooled
    assert f"it is shown in: {FIGURES['layer_profiles_within'].title}." in methods


def test_methods_paragraph_names_the_network_blocks(tmp_path):
    run = make_run(tmp_path / "run", omit=("probes", "stats"), n_per_domain=3, n_seeds=1)
    for name in run.file("activations").iterdir():  # BYOL-A v1's hooked module names, as models/byola.py has them
        layers = pd.read_csv(name / "layers.csv")
        layers["layer"] = ["logmel", "features.3", "features.7", "features.11", "fc.1"]
        layers.to_csv(name / "layers.csv", index=False)
    text = methods_paragraph(RunTables(run))
    for fact in ("features.3 = conv1 (output of conv block 1", "features.7 = conv2", "features.11 = conv3",
                 "fc.1 = fc1 (first fully connected layer", "logmel = input"):
        assert fact in text, fact
    assert block_of("byola-v1", "fc.4")[0] == "fc2" and block_of("byola-v2", "features.11") is None


def test_methods_paragraph_says_what_was_not_recorded(tmp_path):
    run = make_run(tmp_path / "bare", omit=("probes", "stats", "activations", "run_json"), n_per_domain=3)
    text = methods_paragraph(RunTables(run))
    for fact in ("clip-label permutations for p: not recorded", "bootstraps over groups for intervals: not recorded",
                 "cross-validation folds (grouped by the manifest's group): not recorded",
                 "Comparison of pretraining domains: not run"):
        assert fact in text, fact
    assert "Pitch tracker: parselmouth" in text  # from features_meta.csv when run.json is silent
    page = build_report(run)
    assert "run.json records no stage that computed these results: no provenance recorded" in page.read_text()


def test_every_figure_in_the_report_has_its_caption(run, page):
    tables = RunTables(run)
    figures = re.findall(r'<figure id="[^"]+"><h3>([^<]+)</h3><img [^>]+>(?:<figcaption>(.*?)</figcaption>)?</figure>',
                         page, flags=re.S)
    assert [html.unescape(title) for title, _ in figures] == [spec.title for spec in FIGURES.values()]
    for (title, caption), spec in zip(figures, FIGURES.values()):
        expected = spec.caption(tables)
        assert len(expected) > 150, f"{spec.name}: caption too short to say how to read the figure"
        assert html.unescape(caption) == f"{expected} File: figures/{spec.name}.png / .pdf."
    captions = {name: spec.caption(tables) for name, spec in FIGURES.items()}
    assert "pooled out-of-fold R^2" in captions["layer_heatmap"]
    assert "within-domain" in captions["layer_profiles_within"]
    assert "Hatched grey cells (12)" in captions["domain_contrast"]  # the input layer: 4 descriptors x 3 contrasts
    assert "not evidence of no difference" in captions["domain_contrast"]
    assert "shaded band" in captions["layer_profiles"]


def test_report_shows_rsa_transfer_within_domain_and_control_relative_scores(run, page):
    text = html.unescape(page)
    for title in ("Pooled and within-domain R^2 at the best layer, by pretraining domain",
                  "Pooled, within-domain and per-clip-domain R^2 at the best layer: pretraining domain speech",
                  "Pooled R^2 relative to the random-weight control", "Within-domain R^2 relative to the random-weight",
                  "RSA spearman per layer: pretraining domain speech", "Cross-domain transfer (ridge R^2, median",
                  "Cells per contrast", "Largest differences per contrast"):
        assert title in text, title
    probes = run.read_table("probes.parquet")
    table = pooled_within_table(probes, "speech", order=list(DESCRIPTORS)).set_index("descriptor")
    assert table.loc["f0_mean", "best layer"] == "fc1"
    assert table.loc["hnr", "within-domain R^2"] == pytest.approx(0.0)  # planted: differs only between domains
    assert table.loc["hnr", "pooled R^2"] > 0.4
    assert table.loc["f0_mean", "within-domain R^2"] == pytest.approx(table.loc["f0_mean", "pooled R^2"] / 2)
    assert table.loc["f0_mean", "R^2 on music clips"] == pytest.approx(table.loc["f0_mean", "within-domain R^2"] - 0.1)
    overview = pooled_within_overview(probes, ["speech", "none"], order=list(DESCRIPTORS)).set_index("descriptor")
    pooled_hnr = table.loc["hnr", "pooled R^2"]
    assert overview.loc["hnr", "speech"] == f"{table.loc['hnr', 'best layer']}: {pooled_hnr:.2f} / 0.00"
    assert list(overview.columns) == ["speech", "none"]
    scores = headline_scores(probes)
    relative = control_relative(scores).set_index(["model", "layer", "feature"])["value"]
    pooled = scores.set_index(["model", "layer", "feature"])["value"]
    assert relative[("speech-s0", "fc1", "f0_mean")] == pytest.approx(pooled[("speech-s0", "fc1", "f0_mean")]
                                                                      - pooled[("random", "fc1", "f0_mean")])
    assert "random" not in set(relative.index.get_level_values("model"))
    overview = control_overview(control_relative(scores), order=list(DESCRIPTORS)).set_index("descriptor")
    assert list(overview.columns) == ["speech", "nonspeech", "mixed"]
    assert overview.loc["f0_mean", "speech"].startswith("fc1: +")
    transfer = transfer_table(probes).set_index(["pretrain_domain", "clips"])
    assert transfer.loc[("speech", "speech -> music"), "conv2"] == pytest.approx(-5.0)
    assert list(transfer.index.get_level_values("pretrain_domain").unique()) == ["speech", "nonspeech", "mixed", "none"]
    tasks = task_table(probes).set_index(["pretrain_domain", "task"])
    assert tasks.loc[("speech", "clip_domain"), "logmel"] == pytest.approx(1 / 3)
    assert tasks.loc[("speech", "clip_domain"), "fc1"] == pytest.approx(1 / 3 + 0.4)
    assert tasks.loc[("none", "clip_domain"), "fc1"] == pytest.approx(1 / 3)
    assert tasks.loc[("speech", "clip_domain"), "chance"] == pytest.approx(1 / 3)
    assert tasks.loc[("speech", "clip_domain"), "p < 0.05"] == "6 of 10"  # 2 models x conv2, conv3, fc1
    assert "Task read-out (balanced accuracy" in text
    counts = contrast_counts(run.read_table("stats.parquet")).set_index(["contrast", "cells"])
    assert counts.loc[("speech-nonspeech", "layer x descriptor"), "identical (not tested)"] == len(DESCRIPTORS)
    assert counts["n"].sum() == len(run.read_table("stats.parquet"))


def test_report_states_when_the_design_cannot_reject(tmp_path):
    run = make_run(tmp_path / "run", n_per_domain=4, seed_test="permutation", omit=("activations", "cka", "partition"))
    stats = run.read_table("stats.parquet")
    page = html.unescape(build_report(run).read_text())
    statement = cannot_reject_statement(stats)
    assert statement.startswith(f"{int((stats['status'] == 'cannot_reject').sum())} of ")
    assert f'<p class="warning">{statement}</p>' in page
    assert "cannot reject: their smallest attainable p exceeds alpha" in page  # the methods paragraph
    counts = contrast_counts(stats).set_index(["contrast", "cells"])
    assert counts.loc[("speech-nonspeech", "layer x descriptor"), "tested, cannot reject"] == 4 * (len(LAYERS) - 1)


def test_find_parameter_and_recorded_parameters():
    info = {"stages": {"probe": {"config": {"ridge": {"alphas": [1, 10]}, "n_splits": 5}, "seeds": {"rs": 3}},
                       "compare": {"config": {"n_permutations": 200}}}}
    assert find_parameter(info, ["alphas"]) == [1, 10]
    assert find_parameter(info, ["n_folds", "n_splits"]) == 5
    assert find_parameter(info, ["n_permutations"], stages=["probe"]) is None
    table = recorded_parameters(info)
    assert set(table["parameter"]) == {"config.ridge.alphas", "config.n_splits", "seeds.rs",
                                       "config.n_permutations"}
    assert table.loc[table["parameter"] == "config.ridge.alphas", "value"].item() == "1, 10"


def test_best_layers_find_the_planted_layers(run):
    scores = headline_scores(RunTables(run).require("probes"))
    best = best_layers(scores).set_index(["model", "feature"])
    assert best.loc[("speech-s0", "f0_mean"), "best_layer"] == "fc1"
    assert best.loc[("random", "f0_mean"), "best_layer"] == "logmel"
    assert best.loc[("random", "hnr"), "gain_over_input"] == pytest.approx(0.0)
    assert best.loc[("speech-s0", "f0_mean"), "gain_over_input"] > 0.3
    assert list(dict.fromkeys(best.index.get_level_values("model"))) == [m[0] for m in MODELS]
    overview = best_layer_overview(best.reset_index(), order=list(DESCRIPTORS)).set_index("descriptor")
    assert list(overview.index) == list(DESCRIPTORS) and list(overview.columns) == [m[0] for m in MODELS]
    value = best.loc[("speech-s0", "f0_mean"), "value"]
    gain = best.loc[("speech-s0", "f0_mean"), "gain_over_input"]
    assert overview.loc["f0_mean", "speech-s0"] == f"fc1: {value:.2f} ({gain:+.2f})"
    assert overview.loc["hnr", "random"].startswith("logmel: ")
    table = domain_layer_table(scores, "speech").set_index("descriptor")
    assert list(table.columns) == list(LAYERS)
    expected = scores[(scores["pretrain_domain"] == "speech") & (scores["feature"] == "hnr")
                      & (scores["layer"] == "conv2")]["value"].mean()
    assert table.loc["hnr", "conv2"] == pytest.approx(expected)


def test_report_object_escapes_and_checks_its_input(tmp_path):
    report = Report("t <1>")
    report.add_section("A & B", section_id="ab")
    report.add_table(pd.DataFrame({"x": ["<b>", None], "v": [0.123456, np.nan]}), max_rows=1, caption="c")
    report.add_paragraph("2 < 3")
    page = report.to_html()
    assert "&lt;b&gt;" in page and "<b>" not in page and "0.123" in page and "showing 1 of 2 rows" in page
    assert "<title>t &lt;1&gt;</title>" in page and "2 &lt; 3" in page
    with pytest.raises(ParameterError, match="section_id must be unique"):
        report.add_section("again", section_id="ab")
    with pytest.raises(ParameterError, match="not a PNG"):
        report.add_figure(b"GIF89a", title="x")
    with pytest.raises(ParameterError, match="max_rows"):
        report.add_table(pd.DataFrame({"x": [1]}), max_rows=0)
    assert report.save(tmp_path / "r.html").read_text() == page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(run, page, tmp_path):
    screenshot = tmp_path / "report.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1280,2400",
               run.file("report.html").resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert screenshot.is_file(), "chromium wrote no screenshot"
    image = np.asarray(Image.open(screenshot).convert("RGB"), dtype=float)
    assert image.shape == (2400, 1280, 3)
    ink = (image.sum(axis=2) < 600).mean()  # not near-white
    colours = len(np.unique(image.reshape(-1, 3)[::7], axis=0))
    assert 0.02 < ink < 0.9, f"screenshot looks blank or solid (ink fraction {ink:.3f})"
    assert colours > 200, f"screenshot has only {colours} colours: figures did not render"
    # the page's first figure is drawn: its region holds many colours
    band = image[1000:2400].reshape(-1, 3)
    assert len(np.unique(band[::5], axis=0)) > 100


def test_commands_refuse_a_missing_run_folder(tmp_path, caplog):
    missing = tmp_path / "no-such-run"
    assert main(["-q", "report", str(missing)]) == 2
    assert main(["-q", "figures", str(missing)]) == 2
    assert "does not exist" in caplog.text and not missing.exists()


def test_report_says_shipped_models_are_no_evidence_about_pretraining_domains(tmp_path):
    """A run probing the shipped domain models says in its Summary that they are no evidence about domains;
    a run of the user's own checkpoints does not."""
    import json

    from audioprobe.figures.run_report import build_report

    run = make_run(tmp_path / "run", n_per_domain=4, n_seeds=1)
    caveat = "no evidence about pretraining domains"
    assert caveat not in build_report(run).read_text()
    path = run.file("activations") / MODELS[0][0] / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "spec": "speech/seed0"}))
    page = build_report(run, force=True).read_text()
    summary = page[page.index('<section id="summary">'):page.index("</section>", page.index('<section id="summary">'))]
    assert caveat in summary and MODELS[0][0] in summary
