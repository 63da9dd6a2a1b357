"""Pretraining constants that the command line needs without importing torch.

``DOMAIN_MIX`` defines the pretraining domains (share of the duration taken from speech and
from non-speech, i.e. music + environmental, see ``PART_LABELS``). ``SHIPPED_RECIPE`` holds
the settings of the shipped models (``models/weights``), sized to train all 9 of them in
under an hour on 2 shared CPU cores; see ``models/weights/README.md`` for why and for what
they do and do not show.
"""
from __future__ import annotations

from ..contract import PRETRAIN_DOMAINS

__all__ = ["TRAINABLE_DOMAINS", "DOMAIN_MIX", "PART_LABELS", "SHIPPED_DOMAINS", "SHIPPED_SEEDS", "SHIPPED_RECIPE"]

#: the pretraining domains a model can be trained on: :data:`audioprobe.contract.PRETRAIN_DOMAINS` less ``none``
TRAINABLE_DOMAINS = tuple(domain for domain in PRETRAIN_DOMAINS if domain != "none")
DOMAIN_MIX = {
    "speech": {"speech": 1.0},
    "nonspeech": {"nonspeech": 1.0},
    "mixed": {"speech": 0.5, "nonspeech": 0.5},
}
#: manifest domains that make up each part of ``DOMAIN_MIX``
PART_LABELS = {"speech": ("speech",), "nonspeech": ("music", "environmental")}
SHIPPED_DOMAINS = TRAINABLE_DOMAINS
SHIPPED_SEEDS = (0, 1, 2)
#: Keyword arguments of :func:`audioprobe.pretrain.train.pretrain` for the shipped models.
SHIPPED_RECIPE = {
    "arch": "byola-v1",
    "d": 512,
    "epochs": 20,
    "batch_size": 32,
    "lr": 1e-3,
    "ema_decay": 0.99,
    "proj_hidden": 1024,
    "proj_dim": 256,
    "n_memory": 512,
    "total_s": 720.0,
    "selection_seed": 0,
}
