"""Praat's cross-correlation harmonicity (``Sound: To Harmonicity (cc)``), vectorised with numpy.

Praat computes each frame's forward cross-correlation lag by lag in long double (about 100,000
products per 20 ms frame at 16 kHz and a 50 Hz floor), which made it the most expensive descriptor
here (~40 % of a clip). This module computes the same quantities for all frames at once: the
numerators by FFT, the running energies by cumulative sums, and the peak strength by Praat's own
windowed-sinc interpolation (``NUM_interpolate_sinc``, depth 700) maximised around the strongest
lag. Frame times, local mean, local peak, window length, lag range and the voiceless rule follow
``Sound_to_Pitch_any`` with the arguments ``Sound_to_Harmonicity_cc`` passes (method FCC_ACCURATE,
voicing threshold 0, no path costs, ceiling at the Nyquist frequency). Source: P. Boersma, Praat
``fon/Sound_to_Pitch.cpp`` and ``fon/Sound_to_Harmonicity.cpp``; Boersma (1993), Proc. Institute of
Phonetic Sciences 17: 97-110. Tests compare it with parselmouth's ``to_harmonicity_cc`` frame by frame.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

__all__ = ["GRID", "N_REFINED", "RANK_DEPTH", "RANK_GRID", "SINC_DEPTH", "HarmonicityFrames", "harmonicity_cc"]

#: Half-width (correlation samples) of the interpolating sinc: Praat's NUM_PEAK_INTERPOLATE_SINC70. Praat's cc
#: harmonicity refines with SINC700, 10x the cost here; with 700 the clip means on the test signals and the
#: shipped corpus move by < 0.05 dB (the candidate choice, N_REFINED, matters more).
SINC_DEPTH = 70
#: Subdivisions per lag of the grid on which the interpolated correlation is maximised (then a parabola through
#: the best grid point: error O(GRID^-4) of the interpolant's curvature scale).
GRID = 16
#: Local maxima refined per frame: the highest by the maximum of a short (RANK_DEPTH) sinc interpolant on a
#: grid of 1 / RANK_GRID lag; Praat's strongest candidate is nearly always among them.
N_REFINED = 3
RANK_DEPTH = 8
RANK_GRID = 8


class HarmonicityFrames:
    """Per-frame output of :func:`harmonicity_cc`.

    Attributes
    ----------
    times : np.ndarray, shape (n_frames,)
        Frame centres, s from the first sample's start (Praat's time axis of a Sound starting at 0).
    hnr_db : np.ndarray, shape (n_frames,)
        Harmonicity in dB; -200 for voiceless (aperiodic or silent) frames, as Praat marks them.
    """

    def __init__(self, times: np.ndarray, hnr_db: np.ndarray):
        self.times = times
        self.hnr_db = hnr_db


def _frame_times(n_samples: int, sr: int, window_s: float, time_step: float) -> np.ndarray:
    """Praat's ``Sampled_shortTermAnalysis``: as many frames as fit, centred in the sound; shape (n_frames,)."""
    dx = 1.0 / sr
    duration = n_samples * dx
    n_frames = int(np.floor((duration - window_s) / time_step)) + 1
    if n_frames < 1:
        return np.zeros(0)
    mid = 0.5 * dx - 0.5 * dx + 0.5 * duration
    first = mid - 0.5 * n_frames * time_step + 0.5 * time_step
    return first + time_step * np.arange(n_frames)


@lru_cache(maxsize=256)
def _grid_weights(depth_left: int, depth_right: int, reach: int = SINC_DEPTH, grid: int = GRID) -> np.ndarray:
    """Weights of Praat's ``NUM_interpolate_sinc`` at the grid ``m + j / grid`` (``j = -grid..grid``) around a sample m.

    ``depth_left`` and ``depth_right`` are the depths Praat uses left of m (``min(depth, distance to
    the ends)`` for ``midleft = m - 1``) and from m on (``midleft = m``). Each row holds the weights of the
    samples ``m - reach .. m + reach``: the Hann-windowed sinc over ``depth`` samples each side of
    x, with half-widths ``x - left + 1`` and ``right - x + 1``; at ``j = 0`` it is the sample itself.

    Returns
    -------
    np.ndarray, shape (2 grid + 1, 2 reach + 1)
    """
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    weights = np.zeros((2 * grid + 1, offsets.size))
    for row, j in enumerate(range(-grid, grid + 1)):
        x = j / grid
        if j == 0:
            weights[row, reach] = 1.0
            continue
        midleft = np.floor(x)
        depth = depth_left if j < 0 else depth_right
        left, right = midleft + 1 - depth, midleft + depth
        inside = (offsets >= left) & (offsets <= right)
        on_left = offsets <= midleft
        u = np.where(on_left, x - offsets, offsets - x)
        half_width = np.where(on_left, x - left + 1, right - x + 1)
        kernel = np.sinc(u) * 0.5 * (1.0 + np.cos(np.pi * u / half_width))
        weights[row] = np.where(inside, kernel, 0.0)
    return weights


def _strongest_peak(r: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest refined strength over the local maxima of each frame's correlation (lags 2..max_lag-1).

    Every positive local maximum is a candidate (voicing threshold 0). Each is first ranked by the
    maximum of a short sinc interpolant (``RANK_DEPTH``); the ``N_REFINED`` highest are then maximised on Praat's
    sinc interpolant over its bracket (the peak lag +- 1): on a grid of ``1 / GRID`` lag, then by the
    parabola through the best grid point and its neighbours. Strengths above 1 are reflected (1 / r),
    as Praat does. Returns the strongest refined strength and whether the frame has any candidate;
    shapes (n_frames,).
    """
    lags = np.arange(2, max_lag)
    r0, r1, r2 = r[:, lags - 1], r[:, lags], r[:, lags + 1]
    is_peak = (r1 > 0) & (r1 > r0) & (r1 >= r2)
    has_peak = is_peak.any(axis=1)
    # Praat's array: lags -max_lag..max_lag (r[-i] = r[i]) at 1-based positions 1..n; padded by SINC_DEPTH zeros
    # (never weighted: the depth stops at the ends) so that every window m - SINC_DEPTH .. m + SINC_DEPTH exists
    full = np.concatenate([r[:, :0:-1], r], axis=1)
    n = full.shape[1]
    padded = np.pad(full, ((0, 0), (SINC_DEPTH, SINC_DEPTH)))
    # rank every candidate by a short interpolant's maximum (near-equal peaks, e.g. at multiples of the period,
    # are ordered by their interpolated height, not by how close a sample falls to it)
    rows, cols = np.nonzero(is_peak)
    short = np.lib.stride_tricks.sliding_window_view(padded, 2 * RANK_DEPTH + 1, axis=1)
    centre = cols + 2 + max_lag + SINC_DEPTH - RANK_DEPTH  # window start of lag cols + 2 in padded
    ranking = short[rows, centre] @ _grid_weights(RANK_DEPTH, RANK_DEPTH, RANK_DEPTH, RANK_GRID).T
    estimate = np.full(is_peak.shape, -np.inf)
    estimate[rows, cols] = ranking.max(axis=1)
    k = min(N_REFINED, lags.size)
    order = np.argpartition(-estimate, k - 1, axis=1)[:, :k]
    valid = np.take_along_axis(is_peak, order, axis=1)
    position = lags[order] + max_lag + 1  # 1-based position m of each candidate
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * SINC_DEPTH + 1, axis=1)
    samples = windows[np.arange(r.shape[0])[:, None], position - 1]  # samples m - SINC_DEPTH .. m + SINC_DEPTH
    depth_left = np.minimum(np.minimum(SINC_DEPTH, position - 1), n - position + 1).ravel()
    depth_right = np.minimum(np.minimum(SINC_DEPTH, position), n - position).ravel()
    samples = samples.reshape(-1, samples.shape[-1])
    pairs, group = np.unique(depth_left * (SINC_DEPTH + 1) + depth_right, return_inverse=True)
    grid = samples @ _grid_weights(SINC_DEPTH, SINC_DEPTH, SINC_DEPTH, GRID).T
    for g, pair in enumerate(pairs.tolist()):  # candidates within SINC_DEPTH of the ends: Praat's shorter depth
        if pair != SINC_DEPTH * (SINC_DEPTH + 1) + SINC_DEPTH:
            members = np.flatnonzero(group == g)
            grid[members] = samples[members] @ _grid_weights(*divmod(pair, SINC_DEPTH + 1), SINC_DEPTH, GRID).T
    grid = grid.reshape(position.shape + (2 * GRID + 1,))
    best = np.clip(np.argmax(grid, axis=2), 1, 2 * GRID - 1)[..., None]
    lo, mid, hi = (np.take_along_axis(grid, best + d, axis=2)[..., 0] for d in (-1, 0, 1))
    bend = 2.0 * mid - lo - hi
    shift = np.clip(np.where(bend > 0, 0.5 * (hi - lo) / np.where(bend > 0, bend, 1.0), 0.0), -1.0, 1.0)
    value = mid + 0.5 * (hi - lo) * shift - 0.5 * bend * shift ** 2
    value = np.where(value > 1.0, 1.0 / np.maximum(value, 1.0), value)
    return np.where(valid, value, -np.inf).max(axis=1), has_peak


def harmonicity_cc(y: np.ndarray, *, sr: int, minimum_pitch: float, time_step: float,
                   silence_threshold: float, periods_per_window: float) -> HarmonicityFrames:
    """Harmonicity (cc) of a sound, as Praat's ``Sound: To Harmonicity (cc)``.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Samples (a Sound starting at time 0).
    sr : int
        Hz.
    minimum_pitch : float
        Hz; sets the longest lag and the window (``periods_per_window / minimum_pitch`` s).
    time_step : float
        s between frames.
    silence_threshold : float
        Frames whose local peak is below about ``silence_threshold`` x the global peak are voiceless.
    periods_per_window : float
        Praat's default for cc is 1.

    Returns
    -------
    HarmonicityFrames
        No frame when the sound is shorter than ``1 / minimum_pitch + periods_per_window / minimum_pitch``.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    n_period = int(np.floor(sr / minimum_pitch))
    half_period = n_period // 2 + 1
    window_s = periods_per_window / minimum_pitch
    half_window = int(np.floor(window_s * sr)) // 2 - 1
    n_window = 2 * half_window
    max_lag = min(int(np.floor(n_window / periods_per_window)) + 2, n_window)
    times = _frame_times(n, sr, 1.0 / minimum_pitch + window_s, time_step)
    global_peak = np.max(np.abs(y - y.mean())) if n else 0.0
    if times.size == 0 or global_peak == 0.0:
        return HarmonicityFrames(times, np.full(times.size, -200.0))
    x1 = 0.5 / sr
    left = np.floor((times - x1) * sr).astype(int)  # 0-based index of Praat's leftSample
    cumsum = np.concatenate([[0.0], np.cumsum(y)])
    local_mean = (cumsum[left + n_period + 1] - cumsum[left + 1 - n_period]) / (2 * n_period)
    # local peak over Praat's window frame (rightSample - half_window .. leftSample + half_window)
    peak_lo = max(half_window + 1 - half_period, 1) - 1
    peak_hi = min(half_window + half_period, n_window)
    peak_view = np.lib.stride_tricks.sliding_window_view(y, peak_hi - peak_lo)
    frame_peak = peak_view[left + 1 - half_window + peak_lo]
    local_peak = np.maximum(frame_peak.max(axis=1) - local_mean, local_mean - frame_peak.min(axis=1))
    intensity = np.minimum(local_peak / global_peak, 1.0)
    # forward cross-correlation of the n_window samples from t - (1/minimum_pitch + window) / 2 with lags 1..max_lag
    start = np.maximum(np.floor((times - 0.5 * (1.0 / minimum_pitch + window_s) - x1) * sr).astype(int), 0)
    span = max_lag + n_window
    # samples beyond the end (the last frames may lack a few lags) are zeros after the mean is removed
    view = np.lib.stride_tricks.sliding_window_view(np.concatenate([y, np.zeros(span)]), span)
    segment = view[start] - local_mean[:, None]
    if start[-1] + span > n:
        segment[start[:, None] + np.arange(span)[None, :] > n - 1] = 0.0
    n_fft = scipy.fft.next_fast_len(span + n_window)
    head = scipy.fft.rfft(segment[:, :n_window], n_fft, axis=1)
    product = scipy.fft.irfft(np.conj(head) * scipy.fft.rfft(segment, n_fft, axis=1), n_fft, axis=1)[:, :max_lag + 1]
    energy = np.concatenate([np.zeros((segment.shape[0], 1)), np.cumsum(segment ** 2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    sum_x2 = energy[:, n_window][:, None]
    sum_y2 = energy[:, lags + n_window] - energy[:, lags]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(sum_x2 * sum_y2 > 0, product / np.sqrt(sum_x2 * sum_y2), 0.0)
    r[:, 0] = 1.0
    strength, has_peak = _strongest_peak(r, min(max_lag, n_window))
    # voiceless candidate of Pitch_pathFinder with voicing threshold 0: max(0, 2 - intensity / silence_threshold)
    voiceless = np.maximum(0.0, 2.0 - intensity / silence_threshold)
    periodic = has_peak & (local_peak > 0) & (strength > voiceless) & (strength > 0)
    clipped = np.clip(strength, 1e-15, 1.0 - 1e-15)
    hnr = np.where(strength <= 1e-15, -150.0, np.where(strength > 1.0 - 1e-15, 150.0,
                                                        10.0 * np.log10(clipped / (1.0 - clipped))))
    return HarmonicityFrames(times, np.where(periodic, hnr, -200.0))
