"""Pretraining data: domain pools of matched duration, cached log-mels, random unit crops.

A pool is a set of manifest rows with a ``take_s`` column: the seconds used from the start of
each clip. :func:`select_pool` picks the rows of one pretraining domain so that the three
domains get the same total duration:

- ``speech``: clips whose ``domain`` is ``speech``;
- ``nonspeech``: clips whose ``domain`` is ``music`` or ``environmental``, each in proportion
  to its duration in the manifest;
- ``mixed``: half of the duration from speech, half from non-speech (same make-up).

The total defaults to the largest one all three domains can reach, ``min(speech,
non-speech)``. Clips are taken in a seeded random order; the last clip of each domain
label is trimmed so that the totals match to the sample. The selection's seed is separate from
the model's seed, so all seeds of a domain train on the same audio.

:class:`LogMelPool` decodes the pool once, computes each clip's log-mel (BYOL-A's front end,
without normalisation) and the pool's normalisation statistics, and serves random 0.95 s
crops (96 frames) cut from the cached log-mels. Cropping the log-mel of the whole clip
instead of the waveform differs from BYOL-A's recipe only in the edge frames of a crop.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..audio import load_audio
from ..errors import ParameterError, check_choice
from ..log import logger, progress
from ..manifest import DOMAINS, read_manifest
from ..models.frontend import SAMPLE_RATE, LogMelFrontend, frames_for_samples
from .recipe import DOMAIN_MIX, PART_LABELS, TRAINABLE_DOMAINS

__all__ = ["DOMAIN_MIX", "UNIT_S", "read_manifests", "matched_total_s", "label_shares",
           "select_pool", "pool_sha256", "LogMelPool"]

UNIT_S = 0.95


def read_manifests(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read one or several manifests into one table (``audio_path`` absolute; clip ids must be unique)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ParameterError("manifests is empty: pass at least one manifest CSV")
    table = pd.concat([read_manifest(p) for p in paths], ignore_index=True)
    dup = table["clip_id"][table["clip_id"].duplicated()]
    if len(dup):
        raise ParameterError(f"clip_id values must be unique across the manifests {[str(p) for p in paths]}; "
                             f"duplicated: {sorted(dup.unique())[:5]}")
    return table


def _durations(manifest: pd.DataFrame) -> dict[str, float]:
    totals = manifest.groupby("domain")["duration_s"].sum()
    return {label: float(totals.get(label, 0.0)) for label in DOMAINS}


def _part_durations(manifest: pd.DataFrame) -> dict[str, float]:
    available = _durations(manifest)
    return {part: sum(available[label] for label in labels) for part, labels in PART_LABELS.items()}


def matched_total_s(manifest: pd.DataFrame) -> float:
    """Return the largest total duration (s) every pretraining domain can get: min(speech, non-speech)."""
    available = _part_durations(manifest)
    return min(available[part] / share for mix in DOMAIN_MIX.values() for part, share in mix.items())


def label_shares(manifest: pd.DataFrame, domain: str) -> dict[str, float]:
    """Share of a pretraining domain's duration taken from each manifest domain.

    Non-speech is split between ``music`` and ``environmental`` in proportion to their durations
    in ``manifest``, so ``nonspeech`` and the non-speech half of ``mixed`` have the same make-up.
    """
    check_choice("domain", domain, TRAINABLE_DOMAINS)
    available, parts = _durations(manifest), _part_durations(manifest)
    return {label: share * available[label] / parts[part]
            for part, share in DOMAIN_MIX[domain].items() for label in PART_LABELS[part] if available[label] > 0}


def select_pool(manifest: pd.DataFrame, domain: str, *, total_s: float | None = None,
                random_state: int = 0) -> pd.DataFrame:
    """Select the rows of one pretraining domain, with ``take_s`` summing to ``total_s``.

    Parameters
    ----------
    manifest : pd.DataFrame
        A manifest table (:func:`read_manifests`), with ``domain`` and ``duration_s``.
    domain : {'speech', 'nonspeech', 'mixed'}
    total_s : float, optional, keyword-only
        Seconds of audio in the pool; default :func:`matched_total_s` (the same for all domains).
    random_state : int, keyword-only
        Seed of the clip order. Keep it fixed across model seeds.

    Returns
    -------
    pool : pd.DataFrame
        The chosen rows, sorted by ``clip_id``, plus ``take_s`` (s), the seconds used from each
        clip's start. ``pool.attrs["total_s"]`` is the total.

    Raises
    ------
    ParameterError
        Unknown domain, or ``total_s`` larger than the manifest can give the domain.

    Notes
    -----
    Each manifest domain's clips are taken in one seeded order that does not depend on the
    pretraining domain, so the halves of ``mixed`` are the first halves of ``speech`` and
    ``nonspeech``.
    """
    shares = label_shares(manifest, domain)
    limit = matched_total_s(manifest)
    total_s = limit if total_s is None else float(total_s)
    if not 0 < total_s <= limit * (1 + 1e-9):
        raise ParameterError(f"total_s must be in (0, {limit:.2f}] s for this manifest (durations "
                             f"{_durations(manifest)} s; shares {DOMAIN_MIX}), got {total_s!r}")
    parts = []
    for label, share in shares.items():
        rows = manifest[manifest["domain"] == label].sort_values("clip_id", kind="stable")
        order = np.random.default_rng([random_state, DOMAINS.index(label)]).permutation(len(rows))
        rows = rows.iloc[order]
        target = share * total_s
        before = rows["duration_s"].cumsum().shift(fill_value=0.0)
        rows = rows[before < target - 1e-9].copy()
        rows["take_s"] = np.minimum(rows["duration_s"].to_numpy(float), target - before[rows.index].to_numpy())
        parts.append(rows)
    pool = pd.concat(parts).sort_values("clip_id", kind="stable").reset_index(drop=True)
    pool.attrs["total_s"] = float(pool["take_s"].sum())
    pool.attrs["domain"] = domain
    return pool


def pool_sha256(pool: pd.DataFrame) -> str:
    """Content hash of a pool: clip ids, file hashes and seconds taken."""
    text = pool[["clip_id", "sha256", "take_s"]].to_csv(index=False, float_format="%.6f")
    return hashlib.sha256(text.encode()).hexdigest()


class LogMelPool:
    """A pool's log-mels in memory, its normalisation statistics, and random unit crops.

    Parameters
    ----------
    pool : pd.DataFrame
        Rows with ``clip_id``, ``audio_path`` and ``take_s`` (from :func:`select_pool`).
    unit_s : float, keyword-only
        Crop duration (s); 0.95 s gives 96 frames at the 10 ms hop.
    quiet : bool, keyword-only
        No progress bar and no summary line (the other processes of a data-parallel run).

    Attributes
    ----------
    frames_ : torch.Tensor, shape (n_mels, total_frames)
        Unnormalised log-mels of all clips, one after the other (on :attr:`device`); clips
        shorter than ``unit_s`` are zero-padded on both sides to ``unit_s`` first, as in BYOL-A.
    log_mels_ : list of torch.Tensor, each (n_mels, n_frames_i)
        Each clip's log-mel (views of :attr:`frames_`).
    mean_, std_ : float
        Mean and standard deviation of all log-mel values of the pool.
    n_frames_ : int
        Frames per crop.
    segments_ : np.ndarray of int, shape (n_segments,)
        Clip index of each crop of one epoch: a clip of ``take_s`` seconds gives
        ``max(1, floor(take_s / unit_s))`` crops, so an epoch covers the pool's duration once.
    """

    def __init__(self, pool: pd.DataFrame, *, unit_s: float = UNIT_S, quiet: bool = False):
        if len(pool) == 0:
            raise ParameterError("pool is empty: select_pool found no clips for this domain")
        self.unit_s = float(unit_s)
        frontend = LogMelFrontend()
        unit = int(round(self.unit_s * SAMPLE_RATE))
        self.log_mels_ = []
        rows = pool.to_dict("records")
        for row in progress(rows, desc="log-mel", unit="clip", disable=True if quiet else None):
            y = load_audio(row["audio_path"], sr=SAMPLE_RATE, clip_id=row["clip_id"])
            y = y[:max(1, int(round(row["take_s"] * SAMPLE_RATE)))]
            if len(y) < unit:
                short = unit - len(y)
                y = np.pad(y, (short // 2, short - short // 2))
            with torch.no_grad():
                self.log_mels_.append(frontend(torch.from_numpy(y)[None])[0, 0])
        self.n_frames_ = frames_for_samples(unit, hop_length=frontend.hop_length)
        lengths = [lm.shape[1] for lm in self.log_mels_]
        self.frames_ = torch.cat(self.log_mels_, dim=1)
        self.log_mels_ = list(torch.split(self.frames_, lengths, dim=1))
        values = self.frames_.double()
        self.mean_, self.std_ = float(values.mean()), float(values.std())
        counts = np.maximum(1, np.floor(pool["take_s"].to_numpy(float) / self.unit_s + 1e-9)).astype(int)
        self.segments_ = np.repeat(np.arange(len(pool)), counts)
        report = logger.debug if quiet else logger.info
        report("pool: %d clips, %.1f s, %d crops per epoch; log-mel mean %.3f, std %.3f", len(pool),
               float(pool["take_s"].sum()), len(self.segments_), self.mean_, self.std_)

    def epoch_plan(self, random_state: int | np.random.Generator, *, batch_size: int,
                   world_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Plan the crops of one epoch, shuffled and cut into full global batches.

        Parameters
        ----------
        random_state : int or Generator
            The same on every process of a data-parallel run.
        batch_size : int, keyword-only
            Crops per process and step.
        world_size : int, keyword-only
            Processes.

        Returns
        -------
        clips, starts : np.ndarray of int, shape (n_steps, world_size, batch_size)
            Clip index and first frame of every crop; the shuffled list wraps around so the
            last batch is full, and ``n_steps = ceil(n_segments / (batch_size * world_size))``.
        """
        rng = np.random.default_rng(random_state)
        per_step = batch_size * world_size
        n_steps = -(-len(self.segments_) // per_step)
        order = self.segments_[rng.permutation(len(self.segments_))]
        clips = np.resize(order, n_steps * per_step)
        room = np.array([lm.shape[1] - self.n_frames_ for lm in self.log_mels_])[clips]
        starts = np.floor(rng.random(len(clips)) * (room + 1)).astype(int)
        shape = (n_steps, world_size, batch_size)
        return clips.reshape(shape), starts.reshape(shape)

    @property
    def device(self) -> torch.device:
        """Where the log-mels are held."""
        return self.frames_.device

    def to(self, device: torch.device | str) -> LogMelPool:
        """Hold the log-mels on ``device`` (e.g. a GPU, so that crops are cut there); returns self."""
        lengths = [lm.shape[1] for lm in self.log_mels_]
        self.frames_ = self.frames_.to(device)
        self.log_mels_ = list(torch.split(self.frames_, lengths, dim=1))
        return self

    def crops(self, clips: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        """Normalised crops, shape (len(clips), 1, n_mels, n_frames), float32, on :attr:`device`.

        The crops are views of :attr:`frames_` stacked by one copy (measured faster than one
        advanced-indexing gather on the CPU, ``benchmarks/bench_pretrain.py``).
        """
        batch = torch.stack([self.log_mels_[c][:, s:s + self.n_frames_] for c, s in zip(clips, starts)])
        return ((batch - self.mean_) / self.std_).unsqueeze(1)
