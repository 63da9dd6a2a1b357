"""Benchmark of activation extraction (never run in CI).

Prints
1. the time of the bare forward pass over a corpus of pre-decoded clips, of the same
   passes with the hooks and pooling of the default layers, and of the whole
   ``extract_activations`` loop (decoding in worker processes, hooks, pooling, zarr writes,
   completed-chunk records), and the overheads of the last two over the first
   (target <= 25 %);
2. the peak resident memory of ``extract_activations`` run in a fresh process on the corpus
   and on a 10x larger one (target: < 20 % growth).

Usage: ``python benchmarks/bench_extract.py [--n-clips 100] [--seconds 2] [--model byola-v1:random]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

SR = 16000

_CHILD = """
import json, resource, sys, time
from audioprobe.models.extract import extract_activations
t = time.perf_counter()
extract_activations(sys.argv[1], sys.argv[2], run=sys.argv[3], device="cpu", n_jobs=int(sys.argv[4]))
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": time.perf_counter() - t, "peak_self_mib": self_kb / 1024,
                  "peak_worker_mib": child_kb / 1024}))
"""


def write_corpus(folder: Path, n_clips: int, seconds: float, *, repeat: int = 1) -> Path:
    """``n_clips`` noise/tone clips and a manifest naming each of them ``repeat`` times."""
    rng = np.random.default_rng(0)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    for i in range(n_clips):
        y = 0.2 * np.sin(2 * np.pi * (100 + 20 * i) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / "clips" / f"c{i:04d}.wav", y.astype(np.float32), SR)
    rows = [{"clip_id": f"r{r}_c{i:04d}", "path": f"clips/c{i:04d}.wav", "domain": "music", "dataset": "bench",
             "group": f"c{i}", "split": "train", "license": "CC0", "source": "bench", "sample_rate": SR,
             "duration_s": seconds, "sha256": ""} for r in range(repeat) for i in range(n_clips)]
    manifest = folder / f"manifest_x{repeat}.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def time_forward(spec: str, waves: torch.Tensor, batch_size: int, *, hooked: bool, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds for all batches, bare or with the default layers hooked and pooled."""
    from audioprobe.models.extract import _pooling_map
    from audioprobe.models.hooks import LayerHooks
    from audioprobe.models.layers import describe_layers, layouts_of
    from audioprobe.models.specs import load_model

    pipeline = load_model(spec).pipeline.eval()
    layouts = layouts_of(describe_layers(pipeline, layers=list(pipeline.encoder.default_layers)))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        if hooked:
            with LayerHooks(pipeline, layouts, pooling=_pooling_map("mean", list(layouts))) as hooks:
                for start in range(0, len(waves), batch_size):
                    pipeline(waves[start:start + batch_size])
                    hooks.pop(batch_size=len(waves[start:start + batch_size]))
        else:
            with torch.no_grad():
                for start in range(0, len(waves), batch_size):
                    pipeline(waves[start:start + batch_size])
        best = min(best, time.perf_counter() - t)
    return best


def run_child(spec: str, manifest: Path, run: Path, n_jobs: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, spec, str(manifest), str(run), str(n_jobs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-clips", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--model", default="byola-v1:random")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2, help="decoding processes of the full extraction")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_corpus(tmp / "corpus", args.n_clips, args.seconds)
        manifest10 = write_corpus(tmp / "corpus", args.n_clips, args.seconds, repeat=10)
        waves = torch.from_numpy(np.stack([sf.read(p, dtype="float32")[0]
                                           for p in sorted((tmp / "corpus" / "clips").glob("*.wav"))]))
        bare = time_forward(args.model, waves, args.batch_size, hooked=False)
        hooked = time_forward(args.model, waves, args.batch_size, hooked=True)
        small = run_child(args.model, manifest, tmp / "run1", args.jobs)
        meta = json.loads(next((tmp / "run1" / "activations").glob("*/model.json")).read_text())
        full = meta["timing"]["wall_s"]
        large = run_child(args.model, manifest10, tmp / "run10", args.jobs)

    n = args.n_clips
    print(f"model {args.model}, {n} clips of {args.seconds:g} s, batch {args.batch_size}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"bare forward pass:                {bare:7.2f} s  ({n / bare:6.1f} clips/s)")
    print(f"forward + hooks + pooling:        {hooked:7.2f} s  overhead {100 * (hooked / bare - 1):+.1f} %")
    print(f"full extraction loop (decode {args.jobs} procs, hooks, pooling, zarr writes, records): "
          f"{full:7.2f} s  overhead {100 * (full / bare - 1):+.1f} %  (target <= 25 %)")
    peak1 = small["peak_self_mib"]
    peak10 = large["peak_self_mib"]
    print(f"peak RSS, {n} clips:   main {peak1:7.1f} MiB, largest decode worker {small['peak_worker_mib']:6.1f} MiB")
    print(f"peak RSS, {10 * n} clips:  main {peak10:7.1f} MiB, largest decode worker "
          f"{large['peak_worker_mib']:6.1f} MiB  growth {100 * (peak10 / peak1 - 1):+.1f} %  (target < 20 %)")


if __name__ == "__main__":
    main()
