"""The report of one run.

Summary, methods, figures, per-layer tables, statistics, failures and provenance, as one self-contained HTML page
(``RUN/report.html``): the page's sections, :func:`run_report` (the page) and :func:`build_report` (the ``report``
stage). The tables themselves are computed in :mod:`.report_tables`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..contract import REPORT, SHIPPED_SPEC, all_fold_scores
from ..log import logger
from ..runstore import Run, fingerprint
from . import task, task_transfer
from .contrast import cannot_reject_statement
from .methods import environment_table, methods_paragraphs, recorded_parameters, stage_config, stage_table
from .registry import FIGURES, build_figures, drawn_file
from .report import Report
from .report_tables import (
    CONTROL_DOMAIN,
    best_layer_overview,
    best_layers,
    contrast_counts,
    control_overview,
    control_relative,
    domain_layer_table,
    largest_contrasts,
    model_domains,
    pooled_within_overview,
    pooled_within_table,
    task_table,
    transfer_table,
)
from .tables import MissingInput, RunTables, descriptor_columns, headline_scores

__all__ = ["run_report", "build_report", "SECTIONS", "STAGE"]

STAGE = "report"

#: Section anchors of the report, in order.
SECTIONS = ("summary", "methods", "figures", "per-layer", "other-probes", "task-readout", "statistics", "failures",
            "provenance")


def _summary(report: Report, tables: RunTables) -> None:
    report.add_section("Summary", section_id="summary")
    clips, features, failures = tables.get("clips"), tables.get("features"), tables.get("failures")
    rows = []
    if clips is not None:
        rows.append(("clips in the run", len(clips)))
    if features is not None:
        rows.append(("clips with descriptors", len(features)))
        rows.append(("descriptors", len(descriptor_columns(features))))
    rows.append(("models", len(tables.models)))
    rows.append(("failures recorded", 0 if failures is None else len(failures)))
    for name in ("probes", "stats"):
        table = tables.get(name)
        rows.append((f"{name} rows", "absent" if table is None else len(table)))
    report.add_table(pd.DataFrame(rows, columns=["item", "value"]))
    if tables.models:
        report.add_table(pd.DataFrame([{"model": name, **{k: info.get(k) for k in (
            "spec", "arch", "pretrain_domain", "seed", "control", "d", "norm_source", "device")},
            "layers": len(tables.layers(name))} for name, info in tables.models.items()]), title="Models")
    shipped = sorted(name for name, info in tables.models.items() if SHIPPED_SPEC.match(str(info.get("spec"))))
    if shipped:
        report.add_paragraph(
            f"What these models can and cannot show: {', '.join(shipped)} are the shipped domain models, small "
            "BYOL-A encoders briefly pretrained on CPU (models/weights/README.md). They exercise the pipeline and "
            "its statistics; their domain differences are no evidence about pretraining domains.")


def _drawable(tables: RunTables) -> dict[str, str]:
    """Name -> title of the figures drawn from probe scores that this run holds (for the methods)."""
    probes = tables.get("probes")
    metrics = set() if probes is None else set(probes.loc[probes["probe"] == "ridge", "metric"].astype(str))
    needs = {"layer_heatmap": "r2_pooled", "layer_profiles": "r2_pooled", "layer_profiles_within": "r2_within"}
    drawable = {name: FIGURES[name].title for name, metric in needs.items() if metric in metrics}
    if tables.get("stats") is not None:
        drawable["domain_contrast"] = FIGURES["domain_contrast"].title
    return drawable


#: Figures shown in the Task read-out section instead of the Figures section.
TASK_FIGURES = (task.NAME, task_transfer.NAME)


def _add_figure(report: Report, tables: RunTables, name: str) -> bool:
    """Embed registered figure ``name`` with its caption; False when its input is absent."""
    spec = FIGURES[name]
    drawn = drawn_file(tables, name)  # drawn by `audioprobe figures` from this very state: embed that file
    if drawn is not None:
        figure = drawn.read_bytes()
    else:
        found = list(build_figures(tables, names=[name]))
        if not found:
            return False
        figure = found[0][1]
    report.add_figure(figure, title=spec.title, caption=f"{spec.caption(tables)} File: figures/{spec.name}.png / .pdf.")
    return True


def _figures(report: Report, tables: RunTables) -> None:
    report.add_section("Figures", section_id="figures")
    names = [name for name in FIGURES if name not in TASK_FIGURES]
    built = {name for name in names if _add_figure(report, tables, name)}
    skipped = [FIGURES[name].title for name in names if name not in built]
    if skipped:
        report.add_paragraph("Not drawn (their input is absent from this run): " + "; ".join(skipped) + ".",
                             css_class="note")


def _per_layer(report: Report, tables: RunTables) -> None:
    report.add_section("Per-layer results (ridge)", section_id="per-layer")
    probes = tables.get("probes")
    try:
        scores = headline_scores(probes) if probes is not None else None
    except MissingInput:
        scores = None
    if scores is None:
        report.add_paragraph("No ridge probe scores (probes.parquet with r2_pooled rows) in this run.",
                             css_class="note")
        return
    order = tables.descriptor_names()
    report.add_table(best_layer_overview(best_layers(scores), order=order),
                     title="Best layer per descriptor (ridge, pooled out-of-fold R^2)",
                     caption="Each cell: the model's best layer, its pooled R^2 (all clip domains together), and "
                             "in brackets its gain over the log-mel input (layer 0).", max_rows=1000)
    within = all_fold_scores(probes, probe="ridge", metric="r2_within")
    domains = model_domains(scores)
    report.add_table(pooled_within_overview(probes, domains, order=order),
                     title="Pooled and within-domain R^2 at the best layer, by pretraining domain",
                     caption="Each cell: the layer with the domain's highest mean pooled R^2, then pooled R^2 / "
                             "within-domain R^2 there (means over the domain's models). Pooled R^2 scores all clips "
                             "together and counts differences between clip domains; within-domain R^2 (r2_within) "
                             "removes the clip-domain means first"
                             + ("" if len(within) else " (not computed in this run: n/a)")
                             + ". A high pooled R^2 with a within-domain R^2 near 0 means the layer mostly tells the "
                               "clip domains apart. The tables below add R^2 on each clip domain's clips.",
                     max_rows=1000)
    for domain in domains:
        n = scores.loc[scores["pretrain_domain"] == domain, "model"].nunique()
        report.add_table(pooled_within_table(probes, domain, order=order), collapsed=True,
                         title=f"Pooled, within-domain and per-clip-domain R^2 at the best layer: pretraining "
                               f"domain {domain} (mean of {n} model{'s' if n > 1 else ''})",
                         caption="R^2 on <clip domain> clips scores the same pooled fit on that domain's clips "
                                 "only.", max_rows=1000)
    relative = control_relative(scores)
    if relative.empty:
        report.add_paragraph("No random-weight control (a model with pretrain_domain 'none') in this run: no "
                             "scores relative to the control.", css_class="note")
    else:
        report.add_table(control_overview(relative, order=order),
                         title="Pooled R^2 relative to the random-weight control",
                         caption="Each cell: the layer where the domain's models (mean) most exceed the "
                                 "random-weight control (pretrain_domain 'none') on the descriptor, and that "
                                 "difference in pooled R^2; what training added over the architecture alone.",
                         max_rows=1000)
        if len(within):
            report.add_table(control_overview(control_relative(within), order=order),
                             title="Within-domain R^2 relative to the random-weight control",
                             caption="As above, for the within-domain score (r2_within).", max_rows=1000)
    for domain in model_domains(scores):
        n = scores.loc[scores["pretrain_domain"] == domain, "model"].nunique()
        report.add_table(domain_layer_table(scores, domain, order=order), collapsed=True,
                         title=f"Pooled R^2 per layer: pretraining domain {domain} (mean of {n} model"
                               f"{'s' if n > 1 else ''})", max_rows=1000)
        if len(within):
            report.add_table(domain_layer_table(within, domain, order=order), collapsed=True,
                             title=f"Within-domain R^2 per layer: pretraining domain {domain}", max_rows=1000)
        if domain != CONTROL_DOMAIN and not relative.empty:
            report.add_table(domain_layer_table(relative, domain, order=order), collapsed=True,
                             title=f"Pooled R^2 minus the random-weight control per layer: pretraining domain "
                                   f"{domain}", max_rows=1000)
    report.add_paragraph("Every score per model, fold and clip domain: probes.parquet (probe 'ridge'); per-clip "
                         "out-of-fold predictions: oof.parquet.", css_class="caption")


def _other_probes(report: Report, tables: RunTables) -> None:
    report.add_section("RSA, cross-domain transfer and tasks", section_id="other-probes")
    probes = tables.get("probes")
    if probes is None:
        report.add_paragraph("No probes.parquet in this run.", css_class="note")
        return
    order = tables.descriptor_names()
    rsa_metrics = sorted(set(probes.loc[probes["probe"] == "rsa", "metric"].dropna().astype(str)))
    for metric in rsa_metrics:
        rsa = all_fold_scores(probes, probe="rsa", metric=metric)
        significant = rsa["p_value"] < 0.05
        report.add_paragraph(f"RSA ({metric} between each layer's RDM and each descriptor's RDM): "
                             f"{int(significant.sum())} of {int(rsa['p_value'].notna().sum())} model x layer x "
                             "descriptor scores have a permutation p < 0.05 (uncorrected).")
        for domain in model_domains(rsa):
            n = rsa.loc[rsa["pretrain_domain"] == domain, "model"].nunique()
            report.add_table(domain_layer_table(rsa, domain, order=order), collapsed=domain != model_domains(rsa)[0],
                             title=f"RSA {metric} per layer: pretraining domain {domain} (mean of {n} model"
                                   f"{'s' if n > 1 else ''})", max_rows=1000)
    if not rsa_metrics:
        report.add_paragraph("No RSA rows in probes.parquet.", css_class="note")
    transfer = transfer_table(probes)
    if transfer.empty:
        report.add_paragraph("No cross-domain transfer rows in probes.parquet.", css_class="note")
    else:
        report.add_table(transfer, title="Cross-domain transfer (ridge R^2, median over descriptors)",
                         caption="A ridge probe trained on one clip domain's clips and scored on another's (same "
                                 "domain: grouped cross-validation inside it); each cell is the median over "
                                 "descriptors of the mean over the pretraining domain's models. Per descriptor: "
                                 "probes.parquet, probe 'transfer'.", max_rows=1000)
    tasks = task_table(probes)
    if not tasks.empty:
        report.add_table(tasks,
                         title="Task read-out (balanced accuracy of a grouped logistic probe, pooled over folds)",
                         caption="Each layer cell: the mean over the pretraining domain's models of the balanced "
                                 "accuracy of a cross-validated logistic read-out of the task's labels; chance = 1 / "
                                 "number of classes; p < 0.05: model x layer scores whose group-respecting "
                                 "permutation p is below 0.05 (uncorrected). Macro-F1 and per-fold scores: "
                                 "probes.parquet, probe 'task'.", max_rows=1000)
    shown = {"ridge", "rsa", "cka", "partition", "transfer", "task"}
    others = sorted(set(probes["probe"].dropna().astype(str)) - shown)
    if others:
        report.add_paragraph(f"Probes in probes.parquet without a table here: {', '.join(others)}.", css_class="note")
    report.add_paragraph("RSA per model with p-values and intervals, transfer per descriptor, task per fold: "
                         "probes.parquet.", css_class="caption")


def _task_readout(report: Report, tables: RunTables) -> None:
    report.add_section("Task read-out", section_id="task-readout")
    try:
        scores = task.task_scores(tables)
    except MissingInput:
        report.add_paragraph("No task probe rows (probe 'task') in this run's probes.parquet.", css_class="note")
        return
    report.add_paragraph(task.task_summary(scores))
    for name in TASK_FIGURES:
        _add_figure(report, tables, name)
    views = task_transfer.transfer_results(tables)
    contrasts = task_transfer.contrast_table(views)
    untestable = contrasts.loc[contrasts["note"] != "", ["view", "task", "note"]]
    for row in untestable.itertuples():
        report.add_paragraph(f"{row.view}, {row.task}: {row.note}.", css_class="warning")
    report.add_table(contrasts, title="In- vs out-of-domain contrast of the task scores",
                     caption="Chance-normalised balanced accuracy, (BA - chance) / (1 - chance). Per task: in-domain "
                             "models (pretraining domain covering the task's clip domains, or mixed) minus "
                             "out-of-domain models, Student two-sample t-test with the seed as the unit (the compare "
                             "stage's per-cell test), its 95% t interval and the difference detectable with 80% "
                             "power (mde); the random-weight control is on neither side. Pooled over tasks: a "
                             "one-sample t-test of the per-task differences (the task is the unit; "
                             "audioprobe.analysis.transfer says why). Uncorrected p-values.", max_rows=1000)


def _statistics(report: Report, tables: RunTables) -> None:
    report.add_section("Statistics", section_id="statistics")
    stats = tables.get("stats")
    if stats is None:
        report.add_paragraph("No domain comparison (stats.parquet) in this run.", css_class="note")
        return
    alpha = (stage_config(tables.info, "compare") or {}).get("alpha", 0.05)
    statement = cannot_reject_statement(stats)
    if statement:
        report.add_paragraph(statement, css_class="warning")
    significant = stats[stats["p_fdr"] <= alpha].sort_values("p_fdr", kind="stable")
    report.add_paragraph(f"{len(significant)} of {int(stats['p_value'].notna().sum())} tests (of {len(stats)} "
                         f"contrast x layer x descriptor rows) have p_fdr <= {alpha:g}. A row without it is not "
                         "evidence of no difference: compare its interval with its mde.")
    report.add_table(contrast_counts(stats, alpha=alpha), title="Cells per contrast",
                     caption="tested, can reject: the design can reach p <= alpha; tested, cannot reject: its "
                             "smallest attainable p exceeds alpha; identical: the same for every model by "
                             "construction (the input layer), not tested; median mde: the median difference "
                             "detectable with 80% power (score units).")
    shown = ["contrast", "layer", "feature", "estimate", "ci_low", "ci_high", "p_value", "p_fdr", "mde", "test"]
    if not significant.empty:
        report.add_table(significant[[c for c in shown if c in significant]],
                         title=f"Significant cells (p_fdr <= {alpha:g})", max_rows=100)
    report.add_table(largest_contrasts(stats), title="Largest differences per contrast (tested layer cells)")
    if tables.run.exists("stats_summary.txt"):
        report.add_preformatted(tables.run.file("stats_summary.txt").read_text(encoding="utf-8"))
    report.add_paragraph(f"Full table ({len(stats)} rows, with tests, notes and power columns): stats.parquet; "
                         "the text summary above: stats_summary.txt.", css_class="caption")


def _failures(report: Report, tables: RunTables) -> None:
    report.add_section("Failures", section_id="failures")
    failures = tables.get("failures")
    if failures is None or failures.empty:
        report.add_paragraph("No failures recorded.")
        return
    counts = failures.groupby(["stage", "error_type"], dropna=False).size().rename("count").reset_index()
    report.add_paragraph(f"{len(failures)} failure(s); failed clips are absent from the tables of their stage.")
    report.add_table(counts, title="Counts by stage and error type")
    report.add_table(failures, title="Failed clips and stages", max_rows=500)


def _provenance(report: Report, tables: RunTables) -> None:
    report.add_section("Provenance", section_id="provenance")
    info = tables.info
    if not set(info.get("stages", {})) - {"figures", "report"}:
        report.add_paragraph("run.json records no stage that computed these results: no provenance recorded.",
                             css_class="note")
        return
    report.add_table(environment_table(info), title="Environment", max_rows=1000)
    report.add_table(stage_table(info), title="Stages")
    report.add_table(recorded_parameters(info), title="Recorded parameters", max_rows=2000)
    if tables.models:
        report.add_table(pd.DataFrame([{"model": name, "spec": m.get("spec"),
                                        "checkpoint_sha256": m.get("checkpoint_sha256")}
                                       for name, m in tables.models.items()]), title="Model checkpoints")


def run_report(run: Run | str | Path) -> Report:
    """Return the :class:`Report` of a run, built from its saved tables and run.json alone."""
    tables = RunTables(run)
    report = Report(f"audioprobe report: {tables.run.path.resolve().name}")
    _summary(report, tables)
    report.add_section("Methods", section_id="methods")
    for paragraph in methods_paragraphs(tables, figures=_drawable(tables)):
        report.add_paragraph(paragraph)
    _figures(report, tables)
    _per_layer(report, tables)
    _other_probes(report, tables)
    _task_readout(report, tables)
    _statistics(report, tables)
    _failures(report, tables)
    _provenance(report, tables)
    return report


def build_report(run: Run | str | Path, *, output: str | Path | None = None, force: bool = False) -> Path:
    """Write the self-contained report of a run (the ``report`` stage).

    The page is rewritten only when the run's state (:meth:`RunTables.state`: its tables,
    activations and stage settings) changed since it was written, or with ``force``.

    Parameters
    ----------
    run : Run, str or Path
        The run folder (must exist).
    output : str or Path, optional, keyword-only
        Where to write the page; ``RUN/report.html`` by default.
    force : bool, keyword-only
        Rewrite the page even when it is up to date.

    Returns
    -------
    Path
        The page.
    """
    tables = RunTables(run)
    path = Path(output if output is not None else tables.run.file(REPORT)).resolve()  # outputs: absolute paths
    with tables.run.stage(STAGE, config={"output": str(path)}, inputs={"state": fingerprint(tables.state())},
                          outputs=(path,), force=force, computes=False) as stage:
        if stage.up_to_date:
            logger.info("report up to date: %s (--force rewrites it)", path)
            return path
        run_report(tables.run).save(path)
        stage.complete(output=str(path))
    logger.info("report written to %s", path)
    return path
