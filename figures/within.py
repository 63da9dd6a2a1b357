"""Layer profiles of the within-domain score.

What a layer encodes of a descriptor's variation inside each clip domain, with the differences between clip domains
removed (ridge ``r2_within``).
"""
from __future__ import annotations

from matplotlib.figure import Figure

from .profile import layer_profiles, profile_caption
from .tables import RunTables, headline_scores

__all__ = ["NAME", "TITLE", "METRIC", "caption", "from_run"]

NAME = "layer_profiles_within"
TITLE = "Layer profiles by pretraining domain, within-domain R^2"
METRIC = "r2_within"


def from_run(tables: RunTables) -> Figure:
    """Return the layer profiles of ridge ``r2_within`` of a run (raises MissingInput without such rows)."""
    return layer_profiles(headline_scores(tables.require("probes"), metric=METRIC),
                          metric_label="within-domain out-of-fold $R^2$", order=tables.descriptor_names(),
                          title=TITLE)


def caption(tables: RunTables) -> str:
    """Return what the within-domain profiles show and how to read them."""
    return profile_caption(tables, metric=METRIC,
                           score="within-domain out-of-fold R^2 (clip-domain means of the training folds removed "
                                 "from activations and descriptor; a descriptor that differs only between clip "
                                 "domains scores ~0 here however high its pooled R^2)")
