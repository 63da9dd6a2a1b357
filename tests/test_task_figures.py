"""Task read-out figures, the in- vs out-of-domain transfer contrast and the report's Task read-out section,
checked on planted scores with known answers."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest
from synthetic_run import DOMAIN_TASK_GAIN, DOMAIN_TASKS, LAYERS, make_run

from audioprobe.analysis.seed_unit import student_t
from audioprobe.analysis.transfer import (
    in_domain_side,
    layer_scores,
    normalised_accuracy,
    paired_task_contrast,
    pooled_contrast,
    task_clip_domains,
    task_contrasts,
)
from audioprobe.errors import ParameterError
from audioprobe.figures import FIGURES
from audioprobe.figures.run_report import run_report
from audioprobe.figures.tables import RunTables
from audioprobe.figures.task import (
    task_domains,
    task_profile,
    task_scores,
    task_summary,
)
from audioprobe.figures.task_transfer import (
    contrast_table,
    fixed_layer,
    transfer_results,
)

DOMAINS = ("speech", "nonspeech", "mixed")
#: Task -> its clip domains, for the planted tables below.
CLIP_DOMAINS = {"lang": ("speech",), "birds": ("environmental",), "genre": ("music",), "sort": ("music", "speech")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("task") / "run", domain_tasks=True, omit=("cka", "partition"))


@pytest.fixture(scope="module")
def tables(run):
    return RunTables(run)


def _seed_scores(means: dict, *, n_seeds: int, sd: float, rng: np.random.Generator) -> pd.DataFrame:
    """One score per (model, task): ``means[(pretrain_domain, task)]`` plus seed noise."""
    return pd.DataFrame([{"model": f"{d}-{s}", "pretrain_domain": d, "seed": s, "feature": t,
                          "value": mean + sd * rng.standard_normal()}
                         for (d, t), mean in means.items() for s in range(n_seeds)])


# ---- analysis.transfer ---------------------------------------------------------------------------

def test_task_domains_and_sides():
    clips = pd.DataFrame({"domain": ["speech", "speech", "music", "environmental"],
                          "lang": ["en", "fr", None, None], "kind": ["a", None, "b", "c"]})
    domains = task_clip_domains(clips, [{"name": "lang", "column": "lang"}, {"name": "kind", "column": "kind"},
                                        {"name": "gone", "column": "absent"}])
    assert domains == {"lang": ("speech",), "kind": ("environmental", "music", "speech"), "gone": ()}
    assert [in_domain_side(d, ("speech",)) for d in ("speech", "nonspeech", "mixed", "none")] == [
        "in", "out", "in", "control"]
    assert [in_domain_side(d, ("music", "environmental")) for d in ("speech", "nonspeech")] == ["out", "in"]
    assert in_domain_side("speech", ()) == "control"
    with pytest.raises(ParameterError, match="clip domains"):
        in_domain_side("speech", ("podcast",))


def test_normalised_accuracy_and_layer_choice():
    base = {"model": "m", "pretrain_domain": "speech", "seed": 0, "feature": "t", "probe": "task", "fold": pd.NA}
    probes = pd.DataFrame([{**base, "layer": layer, "layer_index": i, "metric": metric, "value": value}
                           for i, (layer, ba) in enumerate((("logmel", 0.25), ("a", 0.625), ("b", 0.4375)))
                           for metric, value in (("balanced_accuracy_pooled", ba), ("chance", 0.25))])
    scores = normalised_accuracy(probes)
    assert scores["value"].tolist() == pytest.approx([0.0, 0.5, 0.25])
    assert layer_scores(scores)["layer"].tolist() == ["a"]
    assert layer_scores(scores, "b")["value"].tolist() == pytest.approx([0.25])


def test_planted_in_domain_advantage_is_detected_with_the_compare_stage_t_test():
    rng = np.random.default_rng(0)
    means = {(d, t): 0.5 + (0.15 if in_domain_side(d, CLIP_DOMAINS[t]) == "in" else 0.0)
             for d in DOMAINS for t in CLIP_DOMAINS}
    means.update({("none", t): 0.1 for t in CLIP_DOMAINS})
    scores = _seed_scores(means, n_seeds=3, sd=0.03, rng=rng)
    contrasts = task_contrasts(scores, CLIP_DOMAINS).set_index("task")
    for task in ("lang", "birds", "genre"):
        row = contrasts.loc[task]
        assert row["status"] == "tested" and row["p_value"] < 0.01
        # SE of the difference 0.03 * sqrt(1/6 + 1/3) = 0.021: the estimate within 3.3 SE of the planted 0.15
        assert row["estimate"] == pytest.approx(0.15, abs=0.07) and row["ci_low"] < row["estimate"] < row["ci_high"]
        assert row["n_in"] == 6 and row["n_out"] == 3  # the control is on neither side
        group = scores[scores["feature"] == task]
        sides = np.array([in_domain_side(d, CLIP_DOMAINS[task]) for d in group["pretrain_domain"]])
        a, b = group.loc[sides == "in", "value"].to_numpy(), group.loc[sides == "out", "value"].to_numpy()
        assert row["p_value"] == pytest.approx(student_t(a[:, None], b[:, None])[0][0])
        assert row["mde"] > 0
    assert contrasts.loc["sort", "status"] == "not_tested"  # every trained model is in-domain
    assert "cannot be tested" in contrasts.loc["sort", "note"] and contrasts.loc["sort", "n_out"] == 0
    pooled = pooled_contrast(contrasts.reset_index())
    assert pooled["n_tasks"] == 3 and pooled["status"] == "tested" and pooled["p_value"] < 0.05
    assert pooled["ci_low"] < pooled["estimate"] < pooled["ci_high"] and pooled["mde"] > 0
    differences = contrasts.loc[["lang", "birds", "genre"], "estimate"].to_numpy()
    assert pooled["estimate"] == pytest.approx(differences.mean())
    from scipy import stats
    assert pooled["p_value"] == pytest.approx(stats.ttest_1samp(differences, 0.0).pvalue)
    ci = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx((ci.low, ci.high))
    equal = paired_task_contrast(np.full(3, 0.25))  # no spread over tasks: a zero-width interval, not NaN
    assert equal["ci_low"][0] == equal["ci_high"][0] == 0.25


def test_one_model_per_side_cannot_be_tested_and_says_so():
    scores = _seed_scores({("speech", "lang"): 0.8, ("nonspeech", "lang"): 0.5}, n_seeds=1, sd=0.0,
                          rng=np.random.default_rng(0))
    contrasts = task_contrasts(scores, {"lang": ("speech",)})
    assert contrasts.loc[0, "status"] == "not_tested" and np.isnan(contrasts.loc[0, "p_value"])
    assert "1 in-domain and 1 out-of-domain models" in contrasts.loc[0, "note"]
    assert contrasts.loc[0, "mean_in"] == pytest.approx(0.8)  # described, not tested
    pooled = pooled_contrast(contrasts)
    assert pooled["status"] == "not_tested" and "needs at least 2" in pooled["note"] and np.isnan(pooled["p_value"])
    unknown = task_contrasts(scores, {})
    assert "domain is unknown" in unknown.loc[0, "note"]


@pytest.mark.slow
def test_null_gives_calibrated_false_positives():
    """No in-domain advantage: per-task tests (1000 simulated tasks, 3 seeds per domain: 6 in vs 3 out) and the
    pooled test (4000 simulated sets of 4 tasks) reject at 5 % within [0.03, 0.07]; binomial SE of the rate:
    0.0069 (1000) and 0.0034 (4000), so the band is > 2.9 SE either side. ~11 s here."""
    rng = np.random.default_rng(1)
    n_tasks = 1000
    means = {(d, f"t{i}"): 0.4 for d in DOMAINS for i in range(n_tasks)}
    scores = _seed_scores(means, n_seeds=3, sd=0.05, rng=rng)
    contrasts = task_contrasts(scores, {f"t{i}": ("speech",) for i in range(n_tasks)})
    rate = float((contrasts["p_value"] < 0.05).mean())
    assert 0.03 <= rate <= 0.07, rate
    n_sets = 4000  # per-task differences of seed means: 6 in-domain vs 3 out-of-domain seeds of 4 tasks
    seeds = rng.standard_normal((9, 4, n_sets))
    differences = seeds[:6].mean(axis=0) - seeds[6:].mean(axis=0)
    result = paired_task_contrast(differences)
    pooled_rate = float((result["p_value"] < 0.05).mean())
    assert 0.03 <= pooled_rate <= 0.07, pooled_rate
    covered = float(((result["ci_low"] <= 0) & (0 <= result["ci_high"])).mean())
    assert 0.93 <= covered <= 0.97 and covered == pytest.approx(1 - pooled_rate)  # CI from the same statistic


# ---- figures ---------------------------------------------------------------------------------------

def test_task_domains_come_from_the_recorded_tasks_and_clips(tables):
    domains = task_domains(tables)
    assert domains["speaker"] == ("speech",) and domains["sound"] == ("environmental",)
    assert domains["clip_domain"] == ("environmental", "music", "speech")


def test_task_profiles_draw_one_panel_per_task_with_control_and_chance(tables):
    fig = FIGURES["task_profiles"].build(tables)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["clip_domain (environmental+music+speech clips)",
                                               "speaker (speech clips)", "sound (environmental clips)"]
    speaker = axes[1]
    lines = {line.get_label(): line for line in speaker.get_lines()}
    assert lines["random weights / none (n=1)"].get_linestyle() == "--"
    assert lines["chance (1 / classes)"].get_ydata()[0] == pytest.approx(0.5)
    speech = lines["speech (n=2)"].get_ydata()
    assert speech[0] == pytest.approx(0.5) and speech[-1] == pytest.approx(0.5 + 4 * DOMAIN_TASK_GAIN["in"], abs=0.03)
    assert lines["non-speech (n=2)"].get_ydata()[-1] == pytest.approx(0.5 + 4 * DOMAIN_TASK_GAIN["out"], abs=0.03)
    assert [t.get_text() for t in speaker.get_xticklabels()] == list(LAYERS)
    profile = task_profile(task_scores(tables))
    row = profile[(profile["pretrain_domain"] == "speech") & (profile["feature"] == "speaker")
                  & (profile["layer_index"] == 4)].iloc[0]
    assert row["low"] <= row["mean"] <= row["high"] and row["n_models"] == 2


def test_transfer_matrix_and_contrast_on_the_planted_run(tables):
    views = transfer_results(tables)
    assert [v["view"] for v in views] == ["best layer", "fixed layer"]
    assert "fc1, the deepest layer every model has" in views[1]["layer_note"]
    for view in views:  # the best layer of the planted scores is the last one
        matrix = view["matrix"]
        assert list(matrix.columns) == ["speech", "nonspeech", "mixed", "none"]
        assert matrix.loc["speaker", "speech"] == pytest.approx(8 * DOMAIN_TASK_GAIN["in"], abs=0.06)
        assert matrix.loc["speaker", "nonspeech"] == pytest.approx(8 * DOMAIN_TASK_GAIN["out"], abs=0.06)
        assert matrix.loc["sound", "none"] == pytest.approx(0.0)
        contrasts = view["contrasts"].set_index("task")
        for task in DOMAIN_TASKS:
            assert contrasts.loc[task, "status"] == "tested" and contrasts.loc[task, "p_value"] < 0.01
            assert contrasts.loc[task, "n_in"] == 4 and contrasts.loc[task, "n_out"] == 2
        assert contrasts.loc["clip_domain", "status"] == "not_tested"
        assert view["pooled"]["n_tasks"] == 2 and view["pooled"]["estimate"] == pytest.approx(0.4, abs=0.05)
    table = contrast_table(views)
    assert list(table["task"]) == ["clip_domain", "speaker", "sound", "pooled over tasks"] * 2
    fig = FIGURES["task_transfer"].build(tables)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "clip_domain (environmental+music+speech clips)\nin - out: not testable"
    assert labels[1].startswith("speaker (speech clips)\nin - out +0.")
    outlined = [p for p in fig.axes[0].patches]
    assert len(outlined) == 3 + 2 + 2  # in-domain cells: all trained on clip_domain; speech+mixed; nonspeech+mixed


def test_fixed_layer_is_byola_last_conv_block_when_present():
    scores = pd.DataFrame([{"model": m, "layer": layer, "layer_index": i, "value": 0.5}
                           for m in ("a", "b") for i, layer in enumerate(("logmel", "features.3", "features.11",
                                                                          "fc.1"))])
    assert fixed_layer(scores)[0] == "features.11"
    assert fixed_layer(scores[scores["layer"] != "features.11"])[0] == "fc.1"
    partial = scores[~((scores["model"] == "b") & (scores["layer"].isin(["features.11", "fc.1"])))]
    assert fixed_layer(partial)[0] == "features.3"  # the deepest layer both models have


# ---- report ----------------------------------------------------------------------------------------

def test_report_task_readout_section(run, tables):
    page = run_report(run).to_html()
    section = page[page.index('<section id="task-readout">'):]
    section = html.unescape(section[:section.index("</section>")])
    assert section.count("data:image/png;base64,") == 2
    assert FIGURES["task_profiles"].title in section and FIGURES["task_transfer"].title in section
    assert "In- vs out-of-domain contrast of the task scores" in section and "pooled over tasks" in section
    assert "clip_domain: cannot be tested: 6 in-domain and 0 out-of-domain models" in section
    summary = task_summary(task_scores(tables))
    assert html.unescape(html.escape(summary)) in section
    assert "speaker (chance 0.50): log-mel input 0.50" in summary
    assert "exceeds the control at 4 of 4 layers after the input" in summary
    figures = page[page.index('<section id="figures">'):]
    figures = figures[:figures.index("</section>")]
    assert FIGURES["task_profiles"].title not in html.unescape(figures)  # shown once, in its own section
