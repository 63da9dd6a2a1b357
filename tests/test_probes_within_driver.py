"""The probe stage writes the within-domain ridge score (issue 13) beside the pooled one."""
from __future__ import annotations

import numpy as np
from test_probes_driver import make_run

from audioprobe.probes import run_probes


def test_probes_parquet_has_within_domain_rows(tmp_path):
    run = make_run(tmp_path / "run")
    table = run_probes(run, probes=("ridge",), cv=4, n_jobs=1)
    within = table[(table["probe"] == "ridge") & (table["metric"] == "r2_within")]
    pooled = table[(table["probe"] == "ridge") & (table["metric"] == "r2_pooled") & (table["eval_domain"] == "all")]
    key = ["model", "layer", "feature"]
    assert len(within) == len(pooled) > 0
    assert within["fold"].isna().all() and (within["eval_domain"] == "all").all()
    assert len(table[table["metric"] == "pearson_r_within"]) == len(within)
    merged = within.merge(pooled, on=key, suffixes=("_within", "_pooled")).set_index(key)
    # enc encodes log centroid, which does not depend on the domain: within-domain R^2 close to the pooled one
    enc = merged.xs(("enc", "centroid_median"), level=("layer", "feature"))
    assert (enc["value_within"] > 0.6).all()
    np.testing.assert_allclose(enc["value_within"], enc["value_pooled"], atol=0.15)
    assert merged.xs("logmel", level="layer")["value_within"].mean() < 0.05  # noise layer: chance, around 0
