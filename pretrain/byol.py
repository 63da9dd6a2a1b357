"""The BYOL learner of BYOL-A pretraining: networks, loss, training step and optimiser.

BYOL (Grill et al. 2020) as BYOL-A uses it (Niizumi et al. 2021, 2023): an online network
(encoder -> projector -> predictor) learns to predict, from one augmented view of a 0.95 s
log-mel crop, the target network's (encoder -> projector) projection of another view; the
target is an exponential moving average (EMA) of the online network and receives no gradient.
The loss is ``2 - 2 cos(p, z)`` for both orderings of the views, summed, averaged over the
batch (range 0 to 8). The two views are made by :class:`.augment.BYOLAugment` from crops
standardised with the pool's statistics, then the pair is standardised by its own batch
statistics (BYOL-A's post-normalisation). The loop that drives it: :mod:`.train`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .augment import BYOLAugment, standardize_batch

__all__ = ["BYOL", "byol_loss", "byol_step", "make_optimizer"]


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(inplace=True),
                         nn.Linear(n_hidden, n_out))


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(prediction, target)`` per row (0 when aligned, 4 when opposite), shape (B,)."""
    return 2.0 - 2.0 * (F.normalize(prediction, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)


class _Online(nn.Module):
    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module):
        super().__init__()
        self.encoder, self.projector, self.predictor = encoder, projector, predictor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(self.encoder(x)))


class BYOL(nn.Module):
    """Online network, EMA target network and the symmetric BYOL loss.

    Parameters
    ----------
    encoder : nn.Module
        (B, 1, F, T) -> (B, d).
    d : int
        The encoder's output width.
    proj_hidden, proj_dim : int, keyword-only
        MLP widths of projector and predictor.
    ema_decay : float, keyword-only

    Attributes
    ----------
    online : nn.Module
        ``encoder -> projector -> predictor`` (the part that is trained, and wrapped by DDP).
    target : nn.Module
        ``encoder -> projector`` copy updated by :meth:`update_target`; no gradients.
    """

    def __init__(self, encoder: nn.Module, d: int, *, proj_hidden: int = 4096, proj_dim: int = 256,
                 ema_decay: float = 0.99):
        super().__init__()
        self.online = _Online(encoder, _mlp(d, proj_hidden, proj_dim), _mlp(proj_dim, proj_hidden, proj_dim))
        self.ema_decay = float(ema_decay)
        self.reset_target()

    def reset_target(self) -> None:
        """Make the target a fresh copy of the online encoder and projector."""
        self.target = copy.deepcopy(nn.Sequential(self.online.encoder, self.online.projector))
        self.target.requires_grad_(False)

    @torch.no_grad()
    def update_target(self) -> None:
        """``target <- decay * target + (1 - decay) * online`` for every parameter (one fused update)."""
        online = nn.Sequential(self.online.encoder, self.online.projector)
        torch._foreach_lerp_(list(self.target.parameters()), list(online.parameters()), 1.0 - self.ema_decay)

    def loss(self, view_one: torch.Tensor, view_two: torch.Tensor, *, online: nn.Module | None = None
             ) -> torch.Tensor:
        """Compute the symmetric BYOL loss of two views (B, 1, F, T), averaged over the batch.

        ``online`` replaces :attr:`online` in the forward pass (its DDP wrapper); both views go
        through it in one batch.
        """
        batch = view_one.shape[0]
        both = torch.cat([view_one, view_two])
        predictions = (online or self.online)(both).float()
        with torch.no_grad():
            targets = self.target(both).float()
        return (byol_loss(predictions[:batch], targets[batch:])
                + byol_loss(predictions[batch:], targets[:batch])).mean()


def byol_step(learner: BYOL, optimizer: torch.optim.Optimizer, augment: BYOLAugment, crops: torch.Tensor, *,
              online: nn.Module | None = None, precision: str = "fp32", channels_last: bool = False
              ) -> torch.Tensor:
    """One BYOL-A training step on a batch of crops; returns the loss (0-d tensor, detached).

    Two augmented views of ``crops`` (then ``crops`` joins the mixup memory), standardised
    together, go through the online and target networks; the symmetric loss is back-propagated,
    ``optimizer`` steps and the target follows by EMA.

    Parameters
    ----------
    learner : BYOL
    optimizer : torch.optim.Optimizer
        Over ``learner.online``'s parameters.
    augment : BYOLAugment
    crops : torch.Tensor, shape (B, 1, n_mels, n_frames)
        Normalised log-mel crops, on the learner's device.
    online : nn.Module, optional, keyword-only
        The online network's DDP wrapper.
    precision : {'fp32', 'bf16'}, keyword-only
        ``bf16``: forward and backward under ``torch.autocast(dtype=torch.bfloat16)`` (mixed
        precision as in Micikevicius et al. 2018, without loss scaling, which bfloat16's float32
        exponent range makes unnecessary); augmentation, loss and Adam stay float32.
    channels_last : bool, keyword-only
        Give the views the channels-last memory format (use with a learner converted by
        ``learner.to(memory_format=torch.channels_last)``).
    """
    batch = crops.shape[0]
    views = standardize_batch(torch.cat(augment.views(crops)))
    if channels_last:
        views = views.contiguous(memory_format=torch.channels_last)
    with torch.autocast(views.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = learner.loss(views[:batch], views[batch:], online=online)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    learner.update_target()
    return loss.detach()


def make_optimizer(learner: BYOL, lr: float) -> torch.optim.Optimizer:
    """Adam over the online network's parameters (the fused kernel where this torch has one for their device)."""
    try:
        return torch.optim.Adam(learner.online.parameters(), lr=lr, fused=True)
    except RuntimeError:  # no fused Adam for this device type
        return torch.optim.Adam(learner.online.parameters(), lr=lr)
