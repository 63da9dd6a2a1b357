"""The clip manifest: one row per clip, the contract every stage reads.

Columns (``REQUIRED_COLUMNS``): ``clip_id`` (unique), ``path`` (relative to the
manifest's folder), ``domain`` (``speech`` | ``music`` | ``environmental``),
``dataset``, ``group`` (the unit that must not straddle CV folds), ``split``,
``license``, ``source``, ``sample_rate`` (Hz), ``duration_s`` (s), ``sha256``.
Extra columns (labels, ``f0_hz`` ground truth) are kept and passed through; the label and task-group
columns the adapters and the shipped corpus write (``LABEL_COLUMNS``) are read as text, so that ids such as
speaker ``0019`` or utterance ``001`` keep their spelling.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import FULL_SCALE, DecodedAudio, audio_info, decode_audio
from .errors import ClipError, ManifestError, ParameterError

__all__ = [
    "REQUIRED_COLUMNS", "DOMAINS", "NONSPEECH_DOMAINS", "read_manifest", "check_manifest", "sha256_file",
    "default_manifest_path", "as_clip_table", "manifest_sha256", "table_sha256", "over_full_scale_message",
    "LABEL_COLUMNS",
]

REQUIRED_COLUMNS = ("clip_id", "path", "domain", "dataset", "group", "split", "license", "source",
                    "sample_rate", "duration_s", "sha256")
#: Label and task-group columns written by the adapters and the shipped corpus (read as text).
LABEL_COLUMNS = ("label", "labels", "mids", "category", "language", "instrument", "source_category", "speaker",
                 "chapter", "utterance", "speaker_group", "instrument_family", "instrument_source")
DOMAINS = ("speech", "music", "environmental")
NONSPEECH_DOMAINS = ("music", "environmental")
DURATION_TOLERANCE_S = 0.01


def default_manifest_path() -> Path:
    """Return the shipped ``data_manifest.csv`` (the default corpus), found beside the package source.

    Raises
    ------
    ManifestError
        When audioprobe was installed without its source tree (a wheel): pass a manifest.
    """
    path = Path(__file__).resolve().parent.parent / "data_manifest.csv"
    if not path.is_file():
        raise ManifestError(f"the shipped manifest is not at {path}: this install has no source tree "
                            "(install with `pip install -e .` from a clone) or pass a MANIFEST path")
    return path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (:func:`hashlib.file_digest`)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def table_sha256(table: pd.DataFrame, columns: Sequence[str]) -> str:
    """Hex sha256 of the CSV text (header, no index) of ``table[columns]``: order- and value-sensitive.

    The one content hash of a clip set: :func:`manifest_sha256` hashes the contract columns, the
    stages hash the columns that decide their output (e.g. ``clip_id`` and ``audio_path``).

    Parameters
    ----------
    table : pd.DataFrame, shape (n_rows, ...)
    columns : sequence of str
        Columns hashed, in this order.

    Raises
    ------
    ParameterError
        A column is not in ``table``.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ParameterError(f"columns {missing} are not in the table; it has {list(table.columns)}")
    return hashlib.sha256(table[list(columns)].to_csv(index=False).encode()).hexdigest()


def manifest_sha256(manifest: pd.DataFrame) -> str:
    """Return a content hash of a manifest table's contract columns (order-sensitive; :func:`table_sha256`)."""
    return table_sha256(manifest, [c for c in REQUIRED_COLUMNS if c in manifest.columns])


def _structural_problems(df: pd.DataFrame, root: Path) -> list[str]:
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"missing required column(s) {missing}; required: {list(REQUIRED_COLUMNS)}")
    if "clip_id" in df.columns:
        ids = df["clip_id"].astype(str)
        if df["clip_id"].isna().any():
            problems.append(f"{int(df['clip_id'].isna().sum())} row(s) have an empty clip_id")
        for clip_id in sorted(ids[ids.duplicated()].unique()):
            rows = [int(i) + 2 for i in np.flatnonzero(ids.to_numpy() == clip_id)]
            problems.append(f"clip {clip_id!r}: duplicate clip_id on lines {rows}")
    if "path" in df.columns:
        for clip_id, p in zip(df.get("clip_id", df.index), df["path"]):
            if not isinstance(p, str) or not p:
                problems.append(f"clip {clip_id!r}: empty path")
            elif os.path.isabs(p):
                where = "outside" if not Path(p).resolve().is_relative_to(root) else "inside"
                problems.append(f"clip {clip_id!r}: file {p!r}: absolute path ({where} the manifest folder "
                                f"{str(root)!r}); paths must be relative to the manifest's folder")
    if "domain" in df.columns:
        for clip_id, d in zip(df.get("clip_id", df.index), df["domain"]):
            if d not in DOMAINS:
                problems.append(f"clip {clip_id!r}: domain {d!r} is not one of {list(DOMAINS)}")
    return problems


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest CSV.

    Parameters
    ----------
    path : str or Path
        The CSV file; clip paths inside it are relative to its folder.

    Returns
    -------
    manifest : pd.DataFrame
        The manifest's columns (``clip_id``, ``group`` as str) plus ``audio_path``, the absolute
        path of each clip. ``manifest.attrs["root"]`` is the manifest's folder and
        ``manifest.attrs["source"]`` the manifest file.

    Raises
    ------
    ManifestError
        Unreadable file, missing columns, duplicate clip ids, absolute paths or unknown domains;
        the message lists every problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {str(path)!r} not found")
    try:
        df = pd.read_csv(path, dtype={"clip_id": str, "group": str, "path": str, "sha256": str,
                                      **dict.fromkeys(LABEL_COLUMNS, str)},
                         keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise ManifestError(f"manifest {str(path)!r}: cannot be read as CSV ({exc})") from exc
    root = path.resolve().parent
    problems = _structural_problems(df, root)
    if problems:
        raise ManifestError(f"manifest {str(path)!r} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    df["audio_path"] = [str(root / p) for p in df["path"]]
    df.attrs["root"] = str(root)
    df.attrs["source"] = str(path.resolve())
    return df


def as_clip_table(manifest_or_paths: str | Path | pd.DataFrame | Sequence[str | Path]) -> pd.DataFrame:
    """Normalise what a user passes as "the clips" to a manifest-like table.

    Parameters
    ----------
    manifest_or_paths : path to a manifest CSV, a manifest DataFrame, or a sequence of audio paths
        A sequence of paths gets ``clip_id`` = file stem (made unique by its index when stems
        repeat), ``group`` = ``clip_id`` and no domain.

    Returns
    -------
    clips : pd.DataFrame
        At least ``clip_id`` and ``audio_path``.
    """
    if isinstance(manifest_or_paths, (str, Path)):
        return read_manifest(manifest_or_paths)
    if isinstance(manifest_or_paths, pd.DataFrame):
        df = manifest_or_paths.copy()
        if "audio_path" not in df.columns:
            if "path" not in df.columns:
                raise ParameterError("a clip table needs an 'audio_path' or 'path' column, got columns "
                                     f"{list(df.columns)}")
            root = Path(df.attrs.get("root", "."))
            df["audio_path"] = [str(root / p) for p in df["path"]]
        if "clip_id" not in df.columns:
            raise ParameterError(f"a clip table needs a 'clip_id' column, got columns {list(df.columns)}")
        if df["clip_id"].duplicated().any():
            raise ParameterError("clip_id values must be unique; duplicated: "
                                 f"{sorted(df.loc[df['clip_id'].duplicated(), 'clip_id'].unique())[:5]}")
        return df
    paths = [Path(p) for p in manifest_or_paths]
    if not paths:
        raise ParameterError("manifest_or_paths is an empty sequence: pass at least one audio path")
    stems = [p.stem for p in paths]
    ids = stems if len(set(stems)) == len(stems) else [f"{i:05d}_{s}" for i, s in enumerate(stems)]
    return pd.DataFrame({"clip_id": ids, "audio_path": [str(p.resolve()) for p in paths], "group": ids})


def over_full_scale_message(decoded: DecodedAudio) -> str:
    """Describe samples beyond full scale: the peak, how far over it is, and how many samples.

    Returns
    -------
    str
        e.g. ``"samples beyond full scale [-1, 1]: peak |sample| 200 (+46.0 dB re full scale) in 16000 of
        16000 samples (all channels); rescale the file into [-1, 1]"``.
    """
    over_db = 20.0 * np.log10(decoded.peak_abs / FULL_SCALE)
    return (f"samples beyond full scale [-{FULL_SCALE:g}, {FULL_SCALE:g}]: peak |sample| {decoded.peak_abs:.6g} "
            f"(+{over_db:.1f} dB re full scale) in {decoded.n_over_full_scale} of {decoded.n_file_samples} "
            "samples (all channels); rescale the file into [-1, 1] (its dBFS levels are NaN in features)")


def _check_clip(row: dict) -> list[str]:
    clip_id, path = row["clip_id"], row["audio_path"]
    problems: list[str] = []
    try:
        info = audio_info(path, clip_id=clip_id)
        decoded = decode_audio(path, sr=None, clip_id=clip_id)
    except ClipError as exc:
        return [str(exc)]
    if decoded.n_over_full_scale:
        problems.append(f"clip {clip_id!r}: file {row['path']!r}: {over_full_scale_message(decoded)}")
    digest = sha256_file(path)
    if str(row["sha256"]).lower() != digest:
        problems.append(f"clip {clip_id!r}: file {row['path']!r}: sha256 mismatch (manifest {row['sha256']}, "
                        f"file {digest})")
    try:
        expected_sr = int(float(row["sample_rate"]))
    except (TypeError, ValueError):
        expected_sr = None
    if expected_sr != info.sample_rate:
        problems.append(f"clip {clip_id!r}: file {row['path']!r}: sample rate {info.sample_rate} Hz, "
                        f"manifest says {row['sample_rate']}")
    try:
        expected_dur = float(row["duration_s"])
    except (TypeError, ValueError):
        expected_dur = float("nan")
    if not abs(expected_dur - info.duration_s) <= DURATION_TOLERANCE_S:
        problems.append(f"clip {clip_id!r}: file {row['path']!r}: duration {info.duration_s:.4f} s, "
                        f"manifest says {row['duration_s']}")
    return problems


def check_manifest(path: str | Path, *, n_jobs: int | None = None) -> list[str]:
    """Check a manifest and every file it names; report all problems at once.

    Checks required columns, unique ``clip_id``, relative paths, known domains, then per clip:
    file present, sha256 match, decodable audio with finite samples within full scale
    (``|sample| <= 1`` in every channel; the message gives the peak), sample rate and duration
    (within 10 ms) consistent with the manifest.

    Parameters
    ----------
    path : str or Path
        The manifest CSV.
    n_jobs : int, optional
        Threads for hashing and decoding; default: all cores.

    Returns
    -------
    problems : list of str
        One line per problem, naming the clip, the file and what is wrong; empty when all is well.
    """
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        return str(exc).splitlines()[1:] or [str(exc)]
    rows = manifest.to_dict("records")
    with ThreadPoolExecutor(max_workers=n_jobs or os.cpu_count()) as pool:
        per_clip = list(pool.map(_check_clip, rows))
    return [p for problems in per_clip for p in problems]
