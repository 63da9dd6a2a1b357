"""Pretraining pools: speech and non-speech audio of matched total duration, disjoint by source from the default corpus.

``build_pools(out, minutes=N)`` writes::

    OUT/speech.csv        manifest of the speech pool (N minutes)
    OUT/nonspeech.csv     manifest of the non-speech pool (N minutes: environmental sound and music)
    OUT/mixed.csv         the first N/2 minutes of each pool (N minutes in all, within one crop)
    OUT/speech/*.flac, OUT/nonspeech/*.flac

Paths in every manifest are relative to ``OUT``. Crops are 16 kHz mono 16-bit FLAC, cut
from each source after its leading silence in consecutive windows of at most
``crop_s`` seconds (windows shorter than ``min_crop_s`` are dropped), each peak-normalised.
Both pools hold exactly ``round(N * 60 * sr)`` samples (the last crop is shortened to fit).

Sources come only from the ``pool`` partition of :mod:`.sources` (the pool share of the default
corpus's packages, and every source of :data:`.sources.POOL_PACKAGES` that is installed), taken
round-robin across groups (speakers or recordings) in a stable hashed order, at most
``max_source_s`` seconds from each source file (so a long soundtrack does not fill a pool alone).
Raw G.722 voice prompts (``.g722``) are decoded with ``ffmpeg -f g722``. The non-speech pool takes half
its duration from environmental sound and the rest from music (instrument samples, then
melodies rendered with FluidSynth, which have no limit); when the packages hold less
environmental audio than half of N minutes, music fills the difference (the log says how much).
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ClipError, ParameterError
from ..log import logger, progress
from ..runner import resolve_n_jobs
from .clips import leading_silence, pcm16_digest, peak_normalise, write_flac
from .midi import GM_PROGRAMS, SOUNDFONT_LICENSE, SOUNDFONT_PACKAGE, random_melody, render_melodies
from .selection import Decoded, decode_trimmed, manifest_row, parallel_ordered, round_robin
from .sources import (
    PACKAGES,
    POOL_PACKAGES,
    CorpusBuildError,
    SourceFile,
    inventory,
    package_version,
    partition_of,
    unit_hash,
)

__all__ = ["build_pools", "plan_take", "POOL_NAMES"]

POOL_NAMES = ("speech", "nonspeech", "mixed")


def plan_take(remaining: int, available: int, *, min_len: int) -> int:
    """How many samples of a ``available``-sample segment to take when ``remaining`` are still wanted.

    Keeps ``remaining`` either 0 or at least ``min_len`` afterwards, and never takes fewer than
    ``min_len`` samples; 0 means skip this segment.

    Examples
    --------
    >>> plan_take(100, 30, min_len=10)
    30
    >>> plan_take(100, 120, min_len=10)
    100
    >>> plan_take(35, 30, min_len=10)  # taking 30 would leave 5 < 10: take 25, leave 10
    25
    >>> plan_take(15, 12, min_len=10)  # neither 12 nor 5 leaves a usable rest
    0
    """
    if available >= remaining:
        return remaining
    if remaining - available >= min_len:
        return available
    take = remaining - min_len
    return take if take >= min_len else 0


def _windows(n: int, start: int, crop_n: int, min_n: int) -> list[tuple[int, int]]:
    return [(a, min(crop_n, n - a)) for a in range(start, n, crop_n) if n - a >= min_n]


def decode_g722(path: str | Path, *, sr: int) -> np.ndarray:
    """Decode a raw G.722 file (16 kHz) with ``ffmpeg -f g722``, resampled to ``sr`` Hz, float32 mono, shape (n,).

    Raises
    ------
    CorpusBuildError
        ffmpeg is not installed.
    ClipError
        ffmpeg cannot decode the file.
    """
    if shutil.which("ffmpeg") is None:
        raise CorpusBuildError(f"ffmpeg not found: it decodes the G.722 voice prompts ({path}); "
                               "install with: sudo apt-get install ffmpeg")
    res = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", str(path), "-f", "f32le", "-ac", "1",
                          "-ar", str(int(sr)), "-"], capture_output=True, check=False)
    if res.returncode != 0:
        raise ClipError(f"ffmpeg could not decode {path}: {res.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(res.stdout, dtype="<f4").astype(np.float32)


def _decode(path: str, *, sr: int) -> Decoded:
    if path.endswith(".g722"):
        y = decode_g722(path, sr=sr)
        return Decoded(y=y, start=leading_silence(y))
    return decode_trimmed(path, sr=sr)


def _segments_of(src: SourceFile, *, sr: int, crop_n: int, min_n: int, max_n: int
                 ) -> list[tuple[float, np.ndarray]]:
    try:
        dec = _decode(src.path, sr=sr)
    except ClipError as exc:  # a few package files are malformed; skipping them is deterministic
        logger.debug("skipped: %s", exc)
        return []
    out = []
    for a, length in _windows(min(len(dec.y), dec.start + max_n), dec.start, crop_n, min_n):
        seg = dec.y[a:a + length]
        if np.max(np.abs(seg)) > 1e-4:
            out.append((a / sr, seg))
    return out


class _PoolWriter:
    """Accumulates crops into one pool folder until a sample budget is met."""

    def __init__(self, root: Path, name: str, *, sr: int, min_n: int):
        self.root, self.name, self.sr, self.min_n = root, name, sr, min_n
        self.rows: list[dict] = []
        self.digests: set[str] = set()

    def add(self, seg: np.ndarray, remaining: int, *, domain: str, dataset: str, group: str, license: str,
            source: str, category: str, offset_s: float) -> int:
        """Write (a prefix of) ``seg`` if it fits; return the number of samples taken."""
        take = plan_take(remaining, len(seg), min_len=self.min_n)
        if take == 0:
            return 0
        y = peak_normalise(seg[:take])
        digest = pcm16_digest(y)
        if digest in self.digests:
            return 0
        self.digests.add(digest)
        clip_id = f"{self.name}-{len(self.rows):06d}"
        file = self.root / self.name / f"{clip_id}.flac"
        write_flac(file, y, self.sr)
        self.rows.append(manifest_row(clip_id=clip_id, file=file, root=self.root, domain=domain, dataset=dataset,
                                      group=group, split="train", license=license,
                                      source=f"{source}@{offset_s:.3f}s", sample_rate=self.sr, n_samples=take,
                                      category=category))
        return take


def _fill_from_sources(writer: _PoolWriter, sources: list[SourceFile], budget: int, *, crop_n: int, max_n: int,
                       n_jobs: int, desc: str) -> int:
    """Add crops of ``sources`` (in order) until ``budget`` samples; return the samples added."""
    remaining = budget
    bar = progress(total=budget, desc=desc, unit="s", unit_scale=1 / writer.sr)
    try:
        def work(src: SourceFile) -> list[tuple[float, np.ndarray]]:
            return _segments_of(src, sr=writer.sr, crop_n=crop_n, min_n=writer.min_n, max_n=max_n)

        for src, segments in parallel_ordered(work, sources, n_jobs=n_jobs):
            for offset_s, seg in segments:
                took = writer.add(seg, remaining, domain=src.domain, dataset=src.package, group=src.group,
                                  license=src.license, source=src.source, category=src.category, offset_s=offset_s)
                remaining -= took
                bar.update(took)
                if remaining == 0:
                    return budget
    finally:
        bar.close()
    return budget - remaining


def _pool_melodies(*, crop_s: float, batch: int) -> Iterator[list]:
    """Endless batches of pool-partition melodies, cycling through the GM programs."""
    programs = sorted(GM_PROGRAMS)
    k = 0
    while True:
        mels = []
        while len(mels) < batch:
            melody_id = f"melody-{k:06d}"
            program = programs[k % len(programs)]
            if partition_of("music", f"fluidsynth:{melody_id}") == "pool":
                mels.append(random_melody(melody_id, program, duration_s=crop_s,
                                          random_state=int(unit_hash("melody:" + melody_id) * 2**32)))
            k += 1
        yield mels


def _fill_from_melodies(writer: _PoolWriter, budget: int, *, crop_s: float) -> int:
    remaining = budget
    version = f"fluidsynth={package_version('fluidsynth')}+{SOUNDFONT_PACKAGE}={package_version(SOUNDFONT_PACKAGE)}"
    for mels in _pool_melodies(crop_s=crop_s, batch=100):
        for mel, y in zip(mels, render_melodies(mels, duration_s=crop_s, sr=writer.sr)):
            if np.max(np.abs(y)) <= 1e-4:
                continue
            name = GM_PROGRAMS[mel.program]
            remaining -= writer.add(y, remaining, domain="music", dataset="fluidsynth", group=f"fluidsynth:{name}",
                                    license=SOUNDFONT_LICENSE, source=f"{version}:{mel.melody_id} program={name}",
                                    category="midi", offset_s=0.0)
            if remaining == 0:
                return budget
    return budget - remaining  # pragma: no cover  (the melody generator is endless)


def build_pools(out: str | Path, *, minutes: float, crop_s: float = 2.0, min_crop_s: float = 0.5,
                max_source_s: float = 60.0, sr: int = 16000, n_jobs: int | None = None) -> dict[str, Path]:
    """Build the speech and non-speech pretraining pools (and the mixed view) in ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created; existing pool files in it are overwritten).
    minutes : float, keyword-only
        Total duration of each pool in minutes.
    crop_s : float, keyword-only
        Longest crop in seconds.
    min_crop_s : float, keyword-only
        Shortest crop in seconds.
    max_source_s : float, keyword-only
        Most seconds taken from one source file (after its leading silence).
    sr : int, keyword-only
        Sample rate of the crops (Hz).
    n_jobs : int, optional
        Decoding threads (default: all cores).

    Returns
    -------
    manifests : dict
        ``{"speech": path, "nonspeech": path, "mixed": path}``.

    Raises
    ------
    CorpusBuildError
        A package is missing, or the speech sources hold less than ``minutes`` of audio.
    """
    if not minutes > 0:
        raise ParameterError(f"minutes must be > 0, got {minutes!r}")
    if not 0 < min_crop_s <= crop_s:
        raise ParameterError(f"need 0 < min_crop_s <= crop_s, got min_crop_s={min_crop_s}, crop_s={crop_s}")
    if not max_source_s >= min_crop_s:
        raise ParameterError(f"max_source_s must be >= min_crop_s ({min_crop_s}), got {max_source_s!r}")
    n_jobs = resolve_n_jobs(n_jobs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = round(minutes * 60 * sr)
    crop_n, min_n, max_n = round(crop_s * sr), round(min_crop_s * sr), round(max_source_s * sr)
    extra = [p for p in POOL_PACKAGES if package_version(p) is not None]
    if len(extra) < len(POOL_PACKAGES):
        logger.warning("pool-only packages not installed (their audio is left out): %s",
                       sorted(set(POOL_PACKAGES) - set(extra)))
    sources = inventory(packages=[*PACKAGES, *extra], partition="pool")

    def ordered(domain: str) -> list[SourceFile]:
        return round_robin([s for s in sources if s.domain == domain], group=lambda s: s.group,
                           key=lambda s: s.path, salt="pool:")

    speech = _PoolWriter(out, "speech", sr=sr, min_n=min_n)
    got = _fill_from_sources(speech, ordered("speech"), budget, crop_n=crop_n, max_n=max_n, n_jobs=n_jobs,
                             desc="speech pool")
    if got < budget:
        raise CorpusBuildError(f"the speech sources hold only {got / sr / 60:.1f} min after trimming; "
                               f"ask for at most that many minutes (got minutes={minutes})")
    nonspeech = _PoolWriter(out, "nonspeech", sr=sr, min_n=min_n)
    env = _fill_from_sources(nonspeech, ordered("environmental"), budget // 2, crop_n=crop_n, max_n=max_n,
                             n_jobs=n_jobs,
                             desc="environmental")
    music_real = _fill_from_sources(nonspeech, ordered("music"), budget - env, crop_n=crop_n, max_n=max_n,
                                    n_jobs=n_jobs,
                                    desc="music samples")
    midi = _fill_from_melodies(nonspeech, budget - env - music_real, crop_s=crop_s)
    logger.info("non-speech pool: %.1f min environmental, %.1f min music samples, %.1f min rendered melodies",
                env / sr / 60, music_real / sr / 60, midi / sr / 60)

    tables = {name: pd.DataFrame(w.rows) for name, w in (("speech", speech), ("nonspeech", nonspeech))}
    half = minutes * 60 / 2
    tables["mixed"] = pd.concat([t[t["duration_s"].cumsum().shift(fill_value=0.0) < half]
                                 for t in tables.values()], ignore_index=True)
    paths = {}
    for name in POOL_NAMES:
        paths[name] = out / f"{name}.csv"
        tables[name].to_csv(paths[name], index=False)
        logger.info("%s pool: %d crops, %.2f min -> %s", name, len(tables[name]),
                    tables[name]["duration_s"].sum() / 60, paths[name])
    return paths
