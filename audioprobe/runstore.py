"""The run folder: the contract between stages (design.md section 2).

Every stage reads and writes one folder. Writes are atomic (temporary file in the same
folder, fsync, rename), so a killed process never leaves a corrupt table behind; per-stage
completion records in ``run.json`` let a re-run skip finished stages; per-clip stages keep
their finished chunks under ``partial/<stage>/`` so a re-run resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ParameterError
from .provenance import environment_provenance

__all__ = ["Run", "ChunkStore", "atomic_path", "FAILURE_COLUMNS"]

FAILURE_COLUMNS = ["clip_id", "path", "stage", "error_type", "message"]


def _default_file_mode() -> int:
    """0666 minus the process umask: what ``open()`` would give (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it onto ``target``.

    On an exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _default_file_mode())
        os.replace(tmp_path, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _remove_stale_temporaries(folder: Path) -> None:
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class Run:
    """A run folder.

    Parameters
    ----------
    path : str or Path
        The folder; created when missing (with its parents) unless ``create=False``.
    create : bool, keyword-only
        Whether a missing folder may be created.

    Examples
    --------
    >>> run = Run("my-run")                       # doctest: +SKIP
    >>> run.write_table("features.parquet", df)   # doctest: +SKIP
    >>> run.mark_complete("features", n_clips=300)  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            if not create:
                raise ParameterError(f"run folder {str(self.path)!r} does not exist")
            self.path.mkdir(parents=True)
        _remove_stale_temporaries(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def file(self, name: str | Path) -> Path:
        """Absolute path of ``name`` inside the run folder."""
        return self.path / name

    def exists(self, name: str | Path) -> bool:
        return self.file(name).exists()

    # ---- tables and JSON -------------------------------------------------------------------
    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """Atomically write a DataFrame as ``.parquet`` or ``.csv`` (chosen by the name's suffix)."""
        target = self.file(name)
        with atomic_path(target) as tmp:
            if target.suffix == ".parquet":
                table.to_parquet(tmp, index=False)
            elif target.suffix == ".csv":
                table.to_csv(tmp, index=False)
            else:
                raise ParameterError(f"table name must end in .parquet or .csv, got {name!r}")
        return target

    def read_table(self, name: str) -> pd.DataFrame:
        """Read a ``.parquet`` or ``.csv`` table written by :meth:`write_table`."""
        target = self.file(name)
        if not target.is_file():
            raise ParameterError(f"{str(target)!r} does not exist: run the stage that writes {name} first")
        if target.suffix == ".parquet":
            return pd.read_parquet(target)
        return pd.read_csv(target, keep_default_na=False, na_values=[""])

    def write_json(self, name: str, obj: Any) -> Path:
        """Atomically write ``obj`` as indented JSON."""
        target = self.file(name)
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def read_json(self, name: str, default: Any = None) -> Any:
        target = self.file(name)
        if not target.is_file():
            return default
        return json.loads(target.read_text())

    # ---- provenance and stage records --------------------------------------------------------
    @property
    def info(self) -> dict:
        """The content of ``run.json`` (empty dict when absent)."""
        return self.read_json("run.json", default={})

    def start_stage(self, stage: str, *, config: dict | None = None, seeds: dict | None = None,
                    inputs: dict | None = None) -> None:
        """Record that ``stage`` started: its configuration, seeds and input hashes, plus the environment."""
        info = self.info
        info.setdefault("created", _now())
        info["environment"] = environment_provenance()
        stages = info.setdefault("stages", {})
        previous = stages.get(stage, {})
        stages[stage] = {
            "status": "running",
            "started": _now(),
            "first_started": previous.get("first_started", previous.get("started", _now())),
            "config": config or {},
            "seeds": seeds or {},
            "inputs": inputs or {},
        }
        self.write_json("run.json", info)

    def mark_complete(self, stage: str, **summary: Any) -> None:
        """Record that ``stage`` finished, with summary counts (clips done, failures...)."""
        info = self.info
        record = info.setdefault("stages", {}).setdefault(stage, {})
        record.update(status="complete", finished=_now(), summary=summary)
        self.write_json("run.json", info)

    def is_complete(self, stage: str, *, config: dict | None = None) -> bool:
        """Whether ``stage`` finished, and (when given) with the same ``config``."""
        record = self.info.get("stages", {}).get(stage)
        if not record or record.get("status") != "complete":
            return False
        return config is None or json.loads(json.dumps(config, default=str)) == record.get("config")

    # ---- clips and failures ----------------------------------------------------------------
    def failures(self) -> pd.DataFrame:
        """All recorded failures (``failures.csv``), possibly empty."""
        if not self.exists("failures.csv"):
            return pd.DataFrame(columns=FAILURE_COLUMNS)
        return pd.read_csv(self.file("failures.csv"), dtype=str, keep_default_na=False)

    def record_failures(self, stage: str, failures: pd.DataFrame, *, succeeded: list[str] = ()) -> None:
        """Add failures of ``stage`` (replacing older ones of the same clips) and clear clips that now succeeded.

        Parameters
        ----------
        stage : str
        failures : pd.DataFrame
            Columns ``clip_id``, ``path``, ``error_type``, ``message``.
        succeeded : list of str
            Clip ids of ``stage`` that succeeded: their older failure rows are dropped.
        """
        if failures.empty and not len(succeeded) and not self.exists("failures.csv"):
            return
        old = self.failures()
        new = failures.assign(stage=stage)[FAILURE_COLUMNS] if not failures.empty else None
        touched = set(succeeded) | (set(failures["clip_id"]) if not failures.empty else set())
        keep = ~((old["stage"] == stage) & old["clip_id"].astype(str).isin(touched))
        parts = [t for t in (old[keep], new) if t is not None and not t.empty]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)
        self.write_table("failures.csv", table)

    def write_clips(self, clips: pd.DataFrame) -> None:
        """Store the clip table of this run (``clips.parquet``: manifest columns + ``audio_path``).

        Later stages read clip ids, groups and domains from it. Raises when a different clip
        set was stored before: one run folder holds one corpus.
        """
        if self.exists("clips.parquet"):
            old = self.clips()
            if list(old["clip_id"]) != list(clips["clip_id"].astype(str)):
                raise ParameterError(f"run folder {str(self.path)!r} already holds a different clip set "
                                     f"({len(old)} clips); use a new run folder for another corpus")
            return
        table = clips.copy()
        for col in table.columns:
            if table[col].dtype == object:
                table[col] = table[col].astype("string")
        self.write_table("clips.parquet", table)

    def clips(self) -> pd.DataFrame:
        """The run's clip table (see :meth:`write_clips`)."""
        return self.read_table("clips.parquet")


class ChunkStore:
    """Finished chunks of a per-clip stage, kept under ``RUN/partial/<stage>/`` until it completes.

    Each chunk is a parquet table with a ``clip_id`` column, written atomically, so after a
    kill the store holds only whole chunks and :meth:`done_ids` says which clips to skip.
    """

    def __init__(self, run: Run, stage: str):
        self.folder = run.file(Path("partial") / stage)
        self.folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(self.folder)

    def _chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.parquet"))

    def done_ids(self) -> set[str]:
        """Clip ids present in finished chunks."""
        ids: set[str] = set()
        for chunk in self._chunks():
            ids.update(pd.read_parquet(chunk, columns=["clip_id"])["clip_id"].astype(str))
        return ids

    def write_chunk(self, table: pd.DataFrame) -> None:
        """Atomically add a chunk of finished rows."""
        with atomic_path(self.folder / f"chunk-{uuid.uuid4().hex}.parquet") as tmp:
            table.to_parquet(tmp, index=False)

    def collect(self) -> pd.DataFrame:
        """All finished rows, concatenated (empty DataFrame when none)."""
        chunks = [pd.read_parquet(c) for c in self._chunks()]
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()

    def clear(self) -> None:
        """Remove the chunks once the stage's final output is written."""
        for chunk in self._chunks():
            chunk.unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()
            self.folder.parent.rmdir()
