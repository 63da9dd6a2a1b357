"""Stream pooled activations of every clip to one zarr array per layer.

Output, under ``RUN/activations/<model>/`` (see docs/run-folder.md): ``<layer>.zarr``
(float32, (n_clips, pooled_width), rows in ``clips.parquet`` order, chunked along clips;
NaN rows for failed clips, listed in ``failures.csv``), ``layers.csv`` and ``model.json``; the
completed chunks are the units of the ``extract:<model>`` stage in ``run.json``.

How clips are run
-----------------
* Decoding (16 kHz mono) runs in parallel in the worker processes of a torch DataLoader.
* Clips shorter than BYOL-A's unit of 0.95 s are zero-padded to it, centred (as BYOL-A
  does); longer clips run whole (the networks are fully convolutional in time; the clip
  row is the pooling over all of its frames). Nothing is cropped.
* A batch holds clips of equal length only (clips are bucketed by sample count inside
  each chunk), so no clip is padded for the sake of another and a clip's activations do
  not depend on what it was batched with.
* The rows of one chunk (``chunk_clips`` clips) are held in memory, then written to every
  layer's array and recorded as a finished unit of the stage; a killed run resumes at the first chunk
  not recorded, and its batches are formed exactly as in an uninterrupted run. Memory is
  one chunk of rows plus one batch, whatever the corpus size.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import DataLoader, Dataset

from ..allocator import retain_freed_memory
from ..audio import load_audio
from ..contract import (
    ACTIVATIONS,
    LAYERS_CSV,
    LAYERS_CSV_COLUMNS,
    MODEL_JSON,
    list_models,
    model_layers,
    read_layer,
    zarr_store,
)
from ..errors import AudioprobeError, ParameterError, StageError, check_choice
from ..log import logger, progress
from ..manifest import as_clip_table, default_manifest_path, manifest_sha256, table_sha256
from ..runner import resolve_n_jobs
from ..runstore import Run, fingerprint, jsonable
from .device import resolve_device
from .hooks import MODEL_ERRORS, LayerHooks
from .layers import describe_layers, layouts_of
from .pipeline import MIN_SAMPLES
from .pooling import POOLINGS, effective_pooling, pooled_width
from .specs import LoadedModel, load_model

__all__ = ["extract_activations", "ExtractResult", "LAYERS_CSV_COLUMNS", "read_activations", "ModelFaultError"]

SAMPLE_RATE = 16000
#: a chunk's waiting clips run early when they hold more samples than this (bounds memory for long clips)
_MAX_HELD_SAMPLES = 16 * 30 * SAMPLE_RATE
#: a run stops when its first this many clips (fewer if the run has fewer) fail the forward pass the same way
FAIL_FAST_CLIPS = 3


class ModelFaultError(StageError):
    """The network or its settings, not a clip, is at fault: every clip tried so far failed the same way."""


@dataclass
class ExtractResult:
    """What :func:`extract_activations` wrote.

    Attributes
    ----------
    name : str
        The model's folder name under ``activations/``.
    folder : Path
        ``RUN/activations/<name>``.
    layers : pd.DataFrame
        The ``layers.csv`` table.
    n_clips, n_failed : int
    """

    name: str
    folder: Path
    layers: pd.DataFrame
    n_clips: int
    n_failed: int


def read_activations(run: Run | str | Path, model: str, layer: str, *, rows: Sequence[int] | None = None
                     ) -> np.ndarray:
    """Load one layer's pooled activations through the contract reader (:func:`audioprobe.contract.read_layer`).

    Parameters
    ----------
    run : Run, str or Path
        The run folder.
    model, layer : str
        The model's folder under ``activations/`` and a layer of its ``layers.csv``.
    rows : sequence of int, optional, keyword-only
        Row numbers (``clips.parquet`` order) to read; all rows when omitted.

    Returns
    -------
    np.ndarray, shape (n_rows, pooled_width), float64
        Rows in ``clips.parquet`` order (the array is stored as float32); NaN rows for failed clips.

    Raises
    ------
    ParameterError
        The model, the layer or its array is absent.
    """
    run = run if isinstance(run, Run) else Run(run, create=False)
    info = list_models(run, model)[0]
    match = model_layers(info)
    match = match[match["layer"] == layer]
    if match.empty:
        raise ParameterError(f"layer must be one of the layers of {model!r} in {LAYERS_CSV}, got {layer!r}")
    return read_layer(info, match.iloc[0], len(run.clips()), rows=rows)


class _Clips(Dataset):
    """Decoded, padded waveforms of clip rows: ``(row, waveform or None, error_type, message)``."""

    def __init__(self, rows: list[tuple[int, str, str]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row, clip_id, path = self.rows[i]
        try:
            y = load_audio(path, sr=SAMPLE_RATE, clip_id=clip_id)
        except Exception as exc:  # a failing clip becomes a NaN row and a failures.csv line
            return row, None, type(exc).__name__, str(exc)
        if len(y) < MIN_SAMPLES:
            left = (MIN_SAMPLES - len(y)) // 2
            y = np.pad(y, (left, MIN_SAMPLES - len(y) - left))
        return row, y, None, None


def _as_is(item):
    return item


def _pooling_map(pooling: str | dict[str, str], names: list[str]) -> dict[str, str]:
    if isinstance(pooling, str):
        check_choice("pooling", pooling, POOLINGS)
        return {name: pooling for name in names}
    unknown = [layer for layer in pooling if layer not in names and layer != "*"]
    if unknown:
        raise ParameterError(f"pooling names layer(s) {unknown} that are not extracted; extracted: {names}")
    default = pooling.get("*", "mean")
    out = {name: pooling.get(name, default) for name in names}
    for name, method in out.items():
        check_choice(f"pooling of layer {name!r}", method, POOLINGS)
    return out


class _ChunkWriter:
    """One zarr array per layer, created on first use, written one chunk of rows at a time.

    ``widths`` holds each layer's row width; it is None for a layer pooled with ``none``
    over a time axis until the first clip that succeeds fixes it.
    """

    def __init__(self, folder: Path, n_clips: int, chunk_clips: int, widths: dict[str, int | None], *,
                 resume: bool):
        self.folder, self.n_clips, self.chunk_clips = folder, n_clips, chunk_clips
        self.widths = dict(widths)
        self.arrays = {}
        for layer in widths:
            path = folder / f"{layer}.zarr"
            if resume and path.exists():
                self.arrays[layer] = zarr.open_array(store=zarr_store(path), mode="r+")
                self.widths[layer] = int(self.arrays[layer].shape[1])

    def array(self, layer: str):
        if layer not in self.arrays:
            self.arrays[layer] = zarr.open_array(
                store=zarr_store(self.folder / f"{layer}.zarr"), mode="w", shape=(self.n_clips, self.widths[layer]),
                chunks=(self.chunk_clips, self.widths[layer]), dtype="float32", fill_value=np.nan)
        return self.arrays[layer]

    def write(self, chunk: int, blocks: dict[str, np.ndarray]) -> None:
        start = chunk * self.chunk_clips
        for layer, block in blocks.items():
            self.array(layer)[start:start + len(block)] = block


def _run_batch(pipeline, hooks: LayerHooks, batch: list, device: torch.device) -> tuple[dict | None, str | None]:
    """Pooled rows of a batch of equal-length waveforms, or (None, error) if the forward pass fails."""
    try:
        waves = torch.from_numpy(np.stack([y for _, y in batch])).to(device)
        pipeline(waves)
        return hooks.pop(batch_size=len(batch)), None
    except (AudioprobeError, *MODEL_ERRORS) as exc:
        hooks.clear()
        return None, f"{type(exc).__name__}: {exc}"


def extract_activations(model: str | LoadedModel, manifest=None, *, run: Run | str | Path,
                        layers: list[str] | None = None, pooling: str | dict[str, str] = "mean",
                        device: str = "auto", batch_size: int | None = None, n_jobs: int | None = None,
                        chunk_clips: int = 64, random_state: int = 0, force: bool = False) -> ExtractResult:
    """Extract pooled activations of a model for every clip, resumably, to the run folder.

    Large activation tensors are reused between batches: the process keeps freed memory
    (:func:`audioprobe.allocator.retain_freed_memory`).

    Parameters
    ----------
    model : str or LoadedModel
        A model spec (see :mod:`.specs`) or a loaded model.
    manifest : path, DataFrame or sequence of audio paths, optional
        The clips; default: the run's ``clips.parquet`` when present, else the shipped corpus.
    run : Run, str or Path, keyword-only
        The run folder.
    layers : list of str, optional
        Layer names (``audioprobe layers MODEL`` lists them); default: the model's
        ``default_layers`` (BYOL-A: the input, each conv block's output, each fc ReLU), or
        every leaf layer of other modules.
    pooling : str or dict, keyword-only
        One of ``mean`` (default), ``meanmax``, ``tf-mean``, ``none`` for every layer, or a
        dict ``{layer: method}`` (key ``"*"``: the default of the others).
    device : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` uses CUDA when torch sees it (:func:`.device.resolve_device`).
    batch_size : int, optional
        Clips per forward pass; default 32 on CPU, 128 on CUDA.
    n_jobs : int, optional
        Decoding processes; default all cores; 1 decodes in this process.
    chunk_clips : int
        Rows per zarr chunk and per completed-chunk record.
    random_state : int
        Seed of random weights when ``model`` is a spec with random weights.
    force : bool
        Extract every clip again, even when the stage is up to date or holds other settings.

    Returns
    -------
    ExtractResult
    """
    retain_freed_memory()  # the forward pass's large activation tensors, reused instead of page-faulted in again
    run = run if isinstance(run, Run) else Run(run)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, random_state=random_state)
    if not isinstance(chunk_clips, int) or chunk_clips < 1:
        raise ParameterError(f"chunk_clips must be a positive integer, got {chunk_clips!r}")
    device_t = resolve_device(device)
    if batch_size is None:
        batch_size = 128 if device_t.type == "cuda" else 32
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    n_jobs = resolve_n_jobs(n_jobs)

    if manifest is None:
        manifest = run.clips() if run.exists("clips.parquet") else default_manifest_path()
    run.write_clips(as_clip_table(manifest))
    clips = run.clips()
    n_clips = len(clips)

    pipeline = loaded.pipeline
    if layers is None:
        layers = list(getattr(pipeline.encoder, "default_layers", ())) or None
    table = describe_layers(pipeline, layers=layers, random_state=random_state)
    names = list(table["layer"])
    methods = _pooling_map(pooling, names)
    layouts = layouts_of(table)
    table["pooling"] = [effective_pooling(layouts[n], methods[n]) for n in names]
    table["pooled_width"] = [pooled_width((1, *map(int, s.split("x"))), layouts[n], methods[n])
                             for n, s in zip(names, table["output_shape"])]
    table["file"] = [f"{n}.zarr" for n in names]

    stage = f"extract:{loaded.name}"
    folder = Path(ACTIVATIONS) / loaded.name
    ids_sha = table_sha256(clips, ["clip_id"])
    config = {"spec": loaded.spec, "layers": names, "pooling": dict(zip(names, table["pooling"])),
              "n_clips": n_clips, "clip_ids_sha256": ids_sha, "checkpoint_sha256": loaded.checkpoint_sha256,
              "norm_mean": loaded.norm_mean, "norm_std": loaded.norm_std, "chunk_clips": chunk_clips,
              "seed": loaded.seed, "min_samples": MIN_SAMPLES}
    result = ExtractResult(name=loaded.name, folder=run.file(folder), layers=table[LAYERS_CSV_COLUMNS],
                           n_clips=n_clips, n_failed=0)
    previous = run.stage_record(stage)
    if previous.get("units") and previous.get("config") != jsonable(config) and not force:
        raise ParameterError(f"{str(run.file(folder))!r} holds activations extracted with other settings "
                             "(model, layers, pooling or clips); pass another name (--name), recompute with --force, "
                             "or use a new run folder")
    with run.stage(stage, config=config, seeds={"random_state": random_state, "model_seed": loaded.seed},
                   inputs={"manifest_sha256": manifest_sha256(clips), "checkpoint_sha256": loaded.checkpoint_sha256},
                   outputs=(folder / MODEL_JSON, folder / LAYERS_CSV, *(folder / f for f in table["file"])),
                   force=force) as record:
        if record.up_to_date:
            logger.info("extract %s: up to date in %s (same model, settings and clips), skipped (--force "
                        "recomputes)", loaded.name, run.path)
            failures = run.failures()
            result.n_failed = int((failures["stage"] == stage).sum())
            return result
        _extract(run, record, loaded, clips, table, names, layouts, methods, config, device_t, batch_size, n_jobs,
                 chunk_clips, result)
    logger.info("extract %s: %d clips, %d layers, %d failed -> %s", loaded.name, n_clips, len(names),
                result.n_failed, run.file(folder))
    return result



def _extract(run: Run, record, loaded: LoadedModel, clips: pd.DataFrame, table: pd.DataFrame, names: list[str],
             layouts: dict, methods: dict, config: dict, device_t: torch.device, batch_size: int, n_jobs: int,
             chunk_clips: int, result: ExtractResult) -> None:
    """Run the chunks not yet finished, then write ``layers.csv`` and ``model.json`` and complete the stage."""
    stage, folder, n_clips, pipeline = record.name, Path(ACTIVATIONS) / loaded.name, len(clips), loaded.pipeline
    unit_print = fingerprint(config)
    n_chunks = math.ceil(n_clips / chunk_clips)
    done = {k for k in range(n_chunks) if record.unit_done(f"chunk-{k}", unit_print)}
    todo = [k for k in range(n_chunks) if k not in done]
    if done:
        logger.info("extract %s: resuming, %d of %d chunks already written", loaded.name, len(done), n_chunks)
    widths = {n: (None if m == "none" and layouts[n].time_axis is not None else int(w))
              for n, m, w in zip(names, table["pooling"], table["pooled_width"])}
    writer = _ChunkWriter(run.file(folder), n_clips, chunk_clips, widths, resume=bool(done))
    rows = [(i, str(clips["clip_id"].iloc[i]), str(clips["audio_path"].iloc[i])) for k in todo
            for i in range(k * chunk_clips, min(n_clips, (k + 1) * chunk_clips))]
    workers = 0 if n_jobs == 1 else n_jobs
    if workers:
        # The decoding workers are forked from this process. A joblib (loky) pool started earlier in it, by the
        # features stage, then loses its idle workers, and joblib replaces them at the next stage that uses it
        # (probes, figures) with a warning that suggests a memory leak: the replacement is expected, not a fault.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                                category=UserWarning)
    loader = DataLoader(_Clips(rows), batch_size=None, shuffle=False, num_workers=workers, collate_fn=_as_is,
                        prefetch_factor=4 if workers else None)
    pipeline.to(device_t)
    started = time.perf_counter()
    with LayerHooks(pipeline, layouts, pooling=methods) as hooks, \
            progress(total=len(rows), desc=f"extract {loaded.name}") as bar:
        fail_fast = _FailFast(min(FAIL_FAST_CLIPS, len(rows)), loaded)
        state = _ChunkState(chunk_clips, n_clips, lambda batch: _run_batch(pipeline, hooks, batch, device_t),
                            batch_size, on_done=bar.update, fail_fast=fail_fast)

        def finish() -> None:
            blocks, failed, ok = state.flush(writer.widths)
            writer.write(state.chunk, blocks)
            ids, paths = clips["clip_id"].astype(str), clips["audio_path"].astype(str)
            run.record_failures(stage, pd.DataFrame([(ids.iloc[i], paths.iloc[i], e, m) for i, e, m in failed],
                                                    columns=["clip_id", "path", "error_type", "message"]),
                                succeeded=[ids.iloc[i] for i in ok])
            record.finish_unit(f"chunk-{state.chunk}", unit_print)

        for row, y, error_type, message in loader:
            if state.chunk is not None and row // chunk_clips != state.chunk:
                finish()
            state.add(row // chunk_clips, row, y, error_type, message)
        if state.chunk is not None:
            finish()
    wall = time.perf_counter() - started

    for layer in names:  # a 'none' layer no clip reached gets its 1 s width, all NaN
        if writer.widths[layer] is None:
            writer.widths[layer] = int(table.loc[table["layer"] == layer, "pooled_width"].iloc[0])
        writer.array(layer)
    table["pooled_width"] = [int(writer.array(n).shape[1]) for n in names]
    result.layers = table[LAYERS_CSV_COLUMNS]
    run.write_table(folder / LAYERS_CSV, result.layers)
    failures = run.failures()
    result.n_failed = int((failures["stage"] == stage).sum())
    run.write_json(folder / MODEL_JSON, {
        **loaded.metadata(), "device": str(device_t),
        "timing": {"wall_s": round(wall, 3), "clips_this_call": len(rows),
                   "clips_per_s": round(len(rows) / wall, 2) if wall > 0 and rows else None}})
    if result.n_failed == n_clips:
        raise StageError(f"extract {loaded.name}: no clip of {n_clips} succeeded; see {run.file('failures.csv')}")
    record.complete(n_clips=n_clips, n_failed=result.n_failed, layers=names)


class _FailFast:
    """Tell a fault of the model or its settings from per-clip failures.

    Until a clip succeeds, the forward failures of single clips are compared by their
    message with every number masked (the sizes in a shape error follow the clip length).
    When the first ``n_needed`` clips tried all fail the same way, the model cannot run
    these clips at all: :class:`ModelFaultError`, naming the error and where to look. After
    one success every failure is a per-clip failure.
    """

    def __init__(self, n_needed: int, loaded: LoadedModel):
        self.n_needed, self.loaded = n_needed, loaded
        self.succeeded = False
        self.kinds: set[str] = set()
        self.n_failed = 0

    def success(self) -> None:
        self.succeeded = True

    def failure(self, message: str) -> None:
        """Count one clip's forward failure; raise when the model, not the clip, is at fault."""
        if self.succeeded:
            return
        self.kinds.add(re.sub(r"\d+", "N", message))
        self.n_failed += 1
        if self.n_failed >= self.n_needed and len(self.kinds) == 1:
            raise ModelFaultError(
                f"extract {self.loaded.name}: stopped after the first {self.n_failed} clip(s) all failed the same way "
                f"and none succeeded, so the model or its settings are at fault, not the clips: "
                f"{message.strip().splitlines()[0]}. "
                f"Check the model with `audioprobe layers {self.loaded.spec}`; its encoder takes "
                f"{_INPUT_HELP[self.loaded.pipeline.input_kind]}")


_INPUT_HELP = {"logmel": "the normalised log-mel (batch, 1, 64, frames) (input_kind 'logmel')",
               "waveform": "the 16 kHz waveform (batch, n_samples) (input_kind 'waveform')"}


class _ChunkState:
    """The clips of the chunk being filled: length buckets waiting to run, finished rows, failures.

    ``on_done(n)`` is called as each batch (or decoding failure) is finished with its
    number of clips (the progress bar); ``fail_fast`` sees every forward result.
    """

    def __init__(self, chunk_clips: int, n_clips: int, run_batch, batch_size: int, *,
                 on_done: Callable[[int], object], fail_fast: _FailFast):
        self.chunk_clips, self.n_clips, self.run_batch, self.batch_size = chunk_clips, n_clips, run_batch, batch_size
        self.on_done, self.fail_fast = on_done, fail_fast
        self.chunk: int | None = None
        self._reset()

    def _reset(self) -> None:
        self.buckets: dict[int, list] = {}
        self.results: dict[int, dict[str, np.ndarray]] = {}
        self.failed: list[tuple[int, str, str]] = []
        self.held = 0

    def add(self, chunk: int, row: int, y: np.ndarray | None, error_type: str | None, message: str | None) -> None:
        """Queue a decoded clip (or its decoding failure); run its bucket when it is full."""
        self.chunk = chunk
        if y is None:
            self.failed.append((row, error_type, message))
            self.on_done(1)
            return
        bucket = self.buckets.setdefault(len(y), [])
        bucket.append((row, y))
        self.held += len(y)
        if len(bucket) >= self.batch_size:
            self._run(len(y))
        elif self.held > _MAX_HELD_SAMPLES:
            for length in sorted(self.buckets):
                self._run(length)

    def _run(self, length: int) -> None:
        batch = self.buckets.pop(length)
        self.held -= length * len(batch)
        out, error = self.run_batch(batch)
        if out is None and len(batch) > 1:  # find the clip(s) that break the batch: run them one by one
            for item in batch:
                self._collect([item], *self.run_batch([item]))
        else:
            self._collect(batch, out, error)

    def _collect(self, batch: list, out: dict | None, error: str | None) -> None:
        if out is None:
            self.fail_fast.failure(error)
            self.failed += [(row, "ForwardError", error) for row, _ in batch]
        else:
            self.fail_fast.success()
            for j, (row, _) in enumerate(batch):
                self.results[row] = {layer: values[j] for layer, values in out.items()}
        self.on_done(len(batch))

    def flush(self, widths: dict[str, int | None]) -> tuple[dict[str, np.ndarray], list, list[int]]:
        """Run what waits; return the chunk's rows per layer (NaN rows for failures), failures, ok rows.

        ``widths`` is updated in place where a layer's width was unknown; a clip whose row has
        another width (pooling ``none`` on clips of different lengths) fails.
        """
        for length in sorted(self.buckets):
            self._run(length)
        start = self.chunk * self.chunk_clips
        n = min(self.chunk_clips, self.n_clips - start)
        for row in sorted(self.results):
            for layer, values in self.results[row].items():
                if widths.get(layer) is None:
                    widths[layer] = len(values)
                if len(values) != widths[layer]:
                    self.failed.append((row, "ShapeError", f"layer {layer!r} pooled with 'none' gives {len(values)} "
                                        f"values for this clip but {widths[layer]} for others: 'none' needs clips "
                                        "of equal length"))
                    del self.results[row]
                    break
        blocks = {layer: np.full((n, width), np.nan, dtype=np.float32) for layer, width in widths.items()
                  if width is not None}
        for row, values in self.results.items():
            for layer, block in blocks.items():
                block[row - start] = values[layer]
        failed, ok = self.failed, sorted(self.results)
        self._reset()
        return blocks, failed, ok
