"""Pretraining constants that the command line needs without importing torch.

``DOMAIN_MIX`` defines the pretraining domains (share of the duration taken from each manifest
domain); ``SHIPPED_RECIPE`` holds the settings of the shipped models (``models/weights``), sized
to train all 9 of them in about 40 minutes on 2 CPU cores (see ``models/weights/README.md``).
"""
from __future__ import annotations

__all__ = ["PRETRAIN_DOMAINS", "DOMAIN_MIX", "SHIPPED_DOMAINS", "SHIPPED_SEEDS", "SHIPPED_RECIPE"]

DOMAIN_MIX = {
    "speech": {"speech": 1.0},
    "nonspeech": {"music": 0.5, "environmental": 0.5},
    "mixed": {"speech": 0.5, "music": 0.25, "environmental": 0.25},
}
PRETRAIN_DOMAINS = tuple(DOMAIN_MIX)
SHIPPED_DOMAINS = PRETRAIN_DOMAINS
SHIPPED_SEEDS = (0, 1, 2)
#: Keyword arguments of :func:`audioprobe.models.pretrain.pretrain` for the shipped models.
SHIPPED_RECIPE = {
    "arch": "byola-v1",
    "d": 512,
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "ema_decay": 0.99,
    "proj_hidden": 1024,
    "proj_dim": 256,
    "total_s": 600.0,
    "selection_seed": 0,
}
