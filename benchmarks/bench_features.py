"""Benchmark: the full descriptor set on the default corpus (or synthesized 2 s clips when it is absent).

Prints
  * audioprobe's real-time factor (audio seconds per wall second) on all cores, worker start-up included
    (the call starts its worker processes), and on one process;
  * the ratio against the naive loop a researcher would write (librosa.load + pyin C2-C7 + librosa
    spectral features and MFCCs + Praat HNR cc, per clip, one process), on a subset of clips;
  * the ratio against openSMILE eGeMAPSv02 (functionals), one process each on the same subset, when
    ``opensmile`` is importable (it is not a dependency: ``pip install opensmile`` to compare; without it
    the comparison is skipped with a message).

Usage: python benchmarks/bench_features.py [--manifest PATH] [--limit N] [--naive-clips N] [--jobs N] [--chunk N]
The machine may be shared: the load average before and after is printed with the numbers, and the
one-process comparison runs audioprobe and openSMILE each in its own process, taking turns every few clips
(wall and CPU time).
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from audioprobe.features import extract_features
from audioprobe.log import set_verbosity
from audioprobe.manifest import as_clip_table


def _synthesize(folder: Path, n: int, *, seed: int = 0) -> list[Path]:
    """n 2 s clips at 16 kHz: harmonic tones with vibrato, AM noise and clicks, with some noise."""
    rng = np.random.default_rng(seed)
    sr, t = 16000, np.arange(32000) / 16000
    paths = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            f0 = rng.uniform(100, 800)
            phase = 2 * np.pi * np.cumsum(f0 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))) / sr
            y = sum(np.sin(k * phase) / k for k in range(1, 8))
        elif kind == 1:
            y = rng.standard_normal(t.size) * (1 + np.sin(2 * np.pi * rng.uniform(2, 10) * t))
        else:
            y = np.zeros(t.size)
            y[rng.integers(0, t.size, 12)] = 1.0
        y = 0.3 * y / np.max(np.abs(y)) + 0.003 * rng.standard_normal(t.size)
        path = folder / f"synth{i:04d}.wav"
        sf.write(path, y.astype(np.float32), sr)
        paths.append(path)
    return paths


def _naive(path: str) -> dict:
    import librosa
    import parselmouth

    y, sr = librosa.load(path, sr=16000)
    f0, voiced, _ = librosa.pyin(y, fmin=librosa.note_to_hz("C2"), fmax=librosa.note_to_hz("C7"), sr=sr)
    out = {"f0": np.nanmedian(f0) if voiced.any() else np.nan,
           "centroid": np.median(librosa.feature.spectral_centroid(y=y, sr=sr)),
           "bandwidth": np.median(librosa.feature.spectral_bandwidth(y=y, sr=sr)),
           "rolloff": np.median(librosa.feature.spectral_rolloff(y=y, sr=sr)),
           "flatness": np.median(librosa.feature.spectral_flatness(y=y)),
           "rms": np.median(librosa.feature.rms(y=y)),
           "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).mean(axis=1)}
    hnr = parselmouth.Sound(y.astype(np.float64), sr).to_harmonicity_cc().values[0]
    out["hnr"] = hnr[hnr > -200].mean() if (hnr > -200).any() else np.nan
    return out


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _make_tool(name: str):
    """The per-chunk callable of one tool, built (and warmed up) inside its own process."""
    if name == "audioprobe":
        set_verbosity(quiet=True)
        return lambda part: extract_features(list(part), n_jobs=1)
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    return lambda part: pd.concat([smile.process_file(p) for p in part])


def _tool_process(name: str, warm_up: str, conn) -> None:
    """Serve one tool in its own process: run each chunk of paths received, reply (wall s, CPU s)."""
    tool = _make_tool(name)
    tool([warm_up])
    conn.send("ready")
    while (part := conn.recv()) is not None:
        wall, cpu = time.perf_counter(), time.process_time()
        tool(part)
        conn.send((time.perf_counter() - wall, time.process_time() - cpu))


def _interleaved(names: list[str], paths: list, chunk: int) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s of the tool's process and its threads) per tool, the tools taking turns on chunks of clips.

    Each tool runs in its own process (a shared interpreter slows both: audioprobe took 1.3x longer
    per clip after openSMILE had run in the same process), and alternating every ``chunk`` clips
    exposes every tool to the same load of a shared machine, so that their ratio within one run is
    fair even when other work comes and goes. One chunk is served at a time.
    """
    context = multiprocessing.get_context("spawn")
    workers = {}
    for name in names:
        parent, child = context.Pipe()
        process = context.Process(target=_tool_process, args=(name, paths[0], child), daemon=True)
        process.start()
        workers[name] = (process, parent)
    for _, conn in workers.values():
        conn.recv()
    totals = {name: [0.0, 0.0] for name in names}
    for start in range(0, len(paths), chunk):
        for name, (_, conn) in workers.items():
            conn.send(paths[start: start + chunk])
            wall, cpu = conn.recv()
            totals[name][0] += wall
            totals[name][1] += cpu
    for process, conn in workers.values():
        conn.send(None)
        process.join()
    return {name: (wall, cpu) for name, (wall, cpu) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(Path(__file__).resolve().parent.parent / "data_manifest.csv"))
    parser.add_argument("--limit", type=int, default=None, help="use the first N clips (default all)")
    parser.add_argument("--naive-clips", type=int, default=40,
                        help="clips for the one-process, openSMILE and naive loops (default 40)")
    parser.add_argument("--chunk", type=int, default=5, help="clips per turn when alternating audioprobe and openSMILE")
    parser.add_argument("--jobs", type=int, default=None, help="processes for audioprobe (default all cores)")
    parser.add_argument("--synthetic", type=int, default=60, help="clips to synthesize when no manifest")
    args = parser.parse_args()
    set_verbosity(quiet=True)

    with tempfile.TemporaryDirectory() as tmp:
        if Path(args.manifest).is_file():
            clips = as_clip_table(args.manifest)
            source = args.manifest
        else:
            clips = as_clip_table(_synthesize(Path(tmp), args.synthetic))
            source = f"{args.synthetic} synthesized 2 s clips (no manifest at {args.manifest})"
        if args.limit:
            clips = clips.iloc[: args.limit].reset_index(drop=True)
        durations = np.array([sf.info(p).duration for p in clips["audio_path"]])
        subset = clips.iloc[: args.naive_clips].reset_index(drop=True)
        sub_seconds = durations[: len(subset)].sum()
        cores = os.cpu_count()
        print(f"corpus: {source}: {len(clips)} clips, {durations.sum():.1f} s of audio; "
              f"{cores} cores; load average before: {os.getloadavg()[0]:.2f}")

        extract_features(subset.iloc[:2], n_jobs=1)  # warm-up (imports, filterbanks)
        wall_all = _timed(lambda: extract_features(clips, n_jobs=args.jobs))
        rtf_all = durations.sum() / wall_all
        print(f"audioprobe, all {args.jobs or cores} processes: {wall_all:.2f} s wall -> {rtf_all:.1f}x real time "
              f"({1000 * wall_all / len(clips):.1f} ms per clip)")
        names = ["audioprobe"]
        if importlib.util.find_spec("opensmile") is None:
            print("openSMILE: not installed, comparison skipped (pip install opensmile to compare)")
        else:
            names.append("openSMILE")
        timings = _interleaved(names, list(subset["audio_path"]), args.chunk)
        for name, (wall, cpu) in timings.items():
            label = "audioprobe" if name == "audioprobe" else "openSMILE eGeMAPSv02 functionals"
            print(f"{label}, 1 process, {len(subset)} clips: {1000 * wall / len(subset):.1f} ms per clip -> "
                  f"{sub_seconds / wall:.1f}x real time (CPU {1000 * cpu / len(subset):.1f} ms per clip)")
        rtf_one = sub_seconds / timings["audioprobe"][0]
        if "openSMILE" in timings:
            (wall_a, cpu_a), (wall_s, cpu_s) = timings["audioprobe"], timings["openSMILE"]
            print(f"  ratio per process, audioprobe / openSMILE on the same {len(subset)} clips (interleaved every "
                  f"{args.chunk}): {wall_s / wall_a:.2f}x wall (target >= 1.5x), {cpu_s / cpu_a:.2f}x CPU; "
                  f"audioprobe all cores / openSMILE 1 process: {rtf_all / (sub_seconds / wall_s):.2f}x")

        wall_naive = _timed(lambda: [_naive(p) for p in subset["audio_path"]])
        rtf_naive = sub_seconds / wall_naive
        print(f"naive loop (librosa.load + pyin C2-C7 + spectral + MFCC + Praat HNR cc), 1 process: "
              f"{1000 * wall_naive / len(subset):.1f} ms per clip -> {rtf_naive:.1f}x real time")
        print(f"  ratio audioprobe all cores / naive: {rtf_all / rtf_naive:.1f}x (target >= 5x); "
              f"1 process / naive: {rtf_one / rtf_naive:.1f}x")
        print(f"target >= 100x real time on 2 cores: {'met' if rtf_all >= 100 else 'NOT met'} ({rtf_all:.1f}x); "
              f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
