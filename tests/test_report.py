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
from synthetic_run import DESCRIPTORS, FAILED_CLIP, LAYERS, MODELS, make_run

from audioprobe.cli import main
from audioprobe.errors import ParameterError
from audioprobe.figures import FIGURES, Report, build_report
from audioprobe.figures.methods import find_parameter, methods_paragraph, recorded_parameters
from audioprobe.figures.run_report import SECTIONS, best_layer_overview, best_layers, domain_layer_table
from audioprobe.figures.tables import RunTables, headline_scores

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
    assert info["environment"]["git_hash"] in text and "python" in text and "testhost" in text
    assert "version: numpy" in text and "2025-01-01T10:05:00+00:00" in text
    assert FAILED_CLIP in text and "clip is silent <all zeros>" in text  # escaped in the page, readable
    assert "<all zeros>" not in page
    assert "Best layer per descriptor" in text and "Significant cells (p_fdr < 0.05)" in text
    assert "1 of 75 contrast x layer x descriptor cells" in text
    assert "test: mixedlm score ~ domain * layer + (1 | seed)" in text  # stats_summary.txt
    for model, *_ in MODELS:
        assert model in text
    assert "<td>probe</td><td>config.alphas</td><td>0.01, 1, 100, 10000</td>" in page
    assert "<td>compare</td><td>config.n_permutations</td><td>1000</td>" in page


def test_methods_paragraph_names_every_recorded_parameter(run):
    text = methods_paragraph(RunTables(run))
    for fact in ("18 clips", "6 speech", "Pitch tracker: praat-ac", "Pooling: mean",
                 "Cross-validation folds (grouped by the manifest's group): 3",
                 "Ridge alpha grid: 4 values from 0.01 to 10000", "Permutations: 1000", "Correction: fdr_bh",
                 "Unit of inference: seed", "random_state", "probed on a log scale: f0_mean, spectral_centroid",
                 "random (byola-v1:random-weights, seed none, random-weights)", "speech-s1 (byola-v1:speech-s1, seed 1)"):
        assert fact in text, fact
    for descriptor in DESCRIPTORS:
        assert descriptor in text


def test_methods_paragraph_says_what_was_not_recorded(tmp_path):
    run = make_run(tmp_path / "bare", omit=("probes", "stats", "activations", "run_json"), n_per_domain=3)
    text = methods_paragraph(RunTables(run))
    assert "Permutations: not recorded" in text and "Unit of inference: not recorded" in text
    assert "Pitch tracker: parselmouth" in text  # from features_meta.csv when run.json is silent
    page = build_report(run)
    assert "run.json records no stage that computed these results: no provenance recorded" in page.read_text()


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
