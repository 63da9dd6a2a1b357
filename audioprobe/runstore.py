"""The run folder: the contract between stages (docs/run-folder.md, :mod:`audioprobe.contract`).

Every stage reads and writes one folder. Writes are atomic (temporary file in the same
folder, fsync, rename), so a killed process never leaves a corrupt table behind. Shared
records (``run.json``, ``failures.csv``, ``clips.parquet``) are read, changed and written
under an inter-process lock (:mod:`filelock`), so several processes may work on one run
folder at once. Every stage goes through one lifecycle, :meth:`Run.stage`: it records the
stage's configuration and inputs, skips a stage that is up to date, keeps the finished work
units of an interrupted or extended stage, and records a failure with its error.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from .contract import CLIPS, FAILURE_COLUMNS, FAILURES, RUN_JSON
from .errors import ParameterError
from .provenance import environment_provenance

__all__ = ["Run", "Stage", "ChunkStore", "atomic_path", "fingerprint", "jsonable", "FAILURE_COLUMNS"]

#: A temporary file of another host (or of a process this host cannot see) is stale after this long.
STALE_TEMPORARY_S = 3600.0
_HOST = socket.gethostname().replace(".", "_").replace("@", "_")


def _default_file_mode() -> int:
    """0666 minus the process umask: what ``open()`` would give (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys; non-JSON values as ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def jsonable(obj: Any) -> Any:
    """Return ``obj`` as it reads back from ``run.json`` (tuples become lists, paths strings...)."""
    return json.loads(json.dumps(obj, default=str))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it onto ``target``.

    The temporary name carries the writing process's id and host, so that another process only
    removes it once it is stale (see :func:`remove_stale_temporaries`). On an exception the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}@{_HOST}.tmp", dir=target.parent)
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


def _is_stale(tmp: Path) -> bool:
    """Tell whether a temporary file's writer is gone: a dead process of this host, or older than an hour."""
    try:
        age = time.time() - tmp.stat().st_mtime
    except FileNotFoundError:
        return False
    owner = tmp.name[:-len(".tmp")].rsplit(".", 1)[-1]
    pid, _, host = owner.partition("@")
    if host == _HOST and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return age > STALE_TEMPORARY_S


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files of ``folder`` left by writers that are gone (never one in flight)."""
    for tmp in folder.glob(".*.tmp"):
        if _is_stale(tmp):
            tmp.unlink(missing_ok=True)


class Run:
    """A run folder.

    Parameters
    ----------
    path : str or Path
        The folder; created when missing (with its parents) unless ``create=False``.
    create : bool, keyword-only
        Whether a missing folder may be created.

    Raises
    ------
    ParameterError
        The folder is missing and ``create=False``.

    Examples
    --------
    >>> run = Run("my-run")                                          # doctest: +SKIP
    >>> with run.stage("features", config={"sr": 16000}) as stage:   # doctest: +SKIP
    ...     if not stage.up_to_date:
    ...         run.write_table("features.parquet", df)
    ...         stage.complete(n_clips=len(df))
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            if not create:
                raise ParameterError(f"run folder {str(self.path)!r} does not exist")
            self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / ".lock"), thread_local=False)
        remove_stale_temporaries(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def file(self, name: str | Path) -> Path:
        """Absolute path of ``name`` inside the run folder."""
        return self.path / name

    def exists(self, name: str | Path) -> bool:
        """Whether file or folder ``name`` (relative to the run folder) exists."""
        return self.file(name).exists()

    def locked(self) -> FileLock:
        """Return the run folder's inter-process lock (re-entrant): hold it around a read-modify-write."""
        return self._lock

    # ---- tables and JSON -------------------------------------------------------------------
    def write_table(self, name: str | Path, table: pd.DataFrame) -> Path:
        """Atomically write a DataFrame as ``.parquet`` or ``.csv`` (chosen by the name's suffix)."""
        target = self.file(name)
        with atomic_path(target) as tmp:
            if target.suffix == ".parquet":
                table.to_parquet(tmp, index=False)
            elif target.suffix == ".csv":
                table.to_csv(tmp, index=False)
            else:
                raise ParameterError(f"table name must end in .parquet or .csv, got {str(name)!r}")
        return target

    def read_table(self, name: str | Path) -> pd.DataFrame:
        """Read a ``.parquet`` or ``.csv`` table written by :meth:`write_table`."""
        target = self.file(name)
        if not target.is_file():
            raise ParameterError(f"{str(target)!r} does not exist: run the stage that writes {name} first")
        if target.suffix == ".parquet":
            return pd.read_parquet(target)
        return pd.read_csv(target, keep_default_na=False, na_values=[""])

    def write_json(self, name: str | Path, obj: Any) -> Path:
        """Atomically write ``obj`` as indented JSON."""
        target = self.file(name)
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def read_json(self, name: str | Path, default: Any = None) -> Any:
        """Return the content of JSON file ``name`` (relative to the run folder), or ``default`` when it is absent."""
        target = self.file(name)
        if not target.is_file():
            return default
        return json.loads(target.read_text())

    def sha256(self, name: str | Path) -> str | None:
        """SHA-256 of a file of the run (None when absent): the identity of a stage's input."""
        target = self.file(name)
        if not target.is_file():
            return None
        with open(target, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    # ---- provenance and stage records --------------------------------------------------------
    @property
    def info(self) -> dict:
        """The content of ``run.json`` (empty dict when absent)."""
        return self.read_json(RUN_JSON, default={})

    def stage_record(self, stage: str) -> dict:
        """Return the record of ``stage`` in ``run.json`` (empty dict when the stage never started)."""
        return self.info.get("stages", {}).get(stage, {})

    def update_info(self, change: Callable[[dict], None]) -> dict:
        """Apply ``change`` to the content of ``run.json`` and write it, under the run's lock."""
        with self._lock:
            info = self.info
            change(info)
            self.write_json(RUN_JSON, info)
        return info

    def _update_stage(self, stage: str, change: Callable[[dict], None]) -> None:
        def apply(info: dict) -> None:
            change(info.setdefault("stages", {}).setdefault(stage, {}))
        self.update_info(apply)

    def start_stage(self, stage: str, *, config: dict | None = None, seeds: dict | None = None,
                    inputs: dict | None = None, keep_units: bool = True, computes: bool = True) -> None:
        """Record that ``stage`` started: its configuration, seeds and inputs, plus the environment.

        The finished units of an earlier start are kept (``keep_units``), so a resumed or extended
        stage recomputes only what is new or changed. A stage that ``computes`` results (not one
        that only draws them: figures, report) also becomes the run's top-level ``environment``.
        """
        environment = environment_provenance()

        def apply(info: dict) -> None:
            info.setdefault("created", _now())
            if computes or "environment" not in info:
                info["environment"] = environment
            stages = info.setdefault("stages", {})
            previous = stages.get(stage, {})
            stages[stage] = {
                "status": "running", "started": _now(),
                "first_started": previous.get("first_started", previous.get("started", _now())),
                "config": jsonable(config or {}), "seeds": jsonable(seeds or {}), "inputs": jsonable(inputs or {}),
                "units": previous.get("units", {}) if keep_units else {}, "environment": environment,
            }
        self.update_info(apply)

    def mark_complete(self, stage: str, **summary: Any) -> None:
        """Record that ``stage`` finished, with summary counts (clips done, failures...)."""
        self._update_stage(stage, lambda r: r.update(status="complete", finished=_now(), summary=jsonable(summary),
                                                     error=None))

    def mark_failed(self, stage: str, error: BaseException | str) -> None:
        """Record that ``stage`` stopped with ``error`` (its finished units are kept)."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._update_stage(stage, lambda r: r.update(status="failed", finished=_now(), error=message))

    def is_complete(self, stage: str, *, config: dict | None = None) -> bool:
        """Whether ``stage`` finished, and (when given) with the same ``config``."""
        record = self.stage_record(stage)
        if record.get("status") != "complete":
            return False
        return config is None or jsonable(config) == record.get("config")

    @contextlib.contextmanager
    def stage(self, name: str, *, config: dict, inputs: dict | None = None, seeds: dict | None = None,
              outputs: tuple[str | Path, ...] = (), force: bool = False, computes: bool = True) -> Iterator[Stage]:
        """Run the lifecycle of one stage: skip when up to date, else record start, units, end or failure.

        Parameters
        ----------
        name : str
            The stage (``features``, ``extract:<model>``, ``probe``, ``compare``, ``figures``, ``report``).
        config : dict
            Settings that change the stage's results (JSON-able).
        inputs : dict, optional
            Identities (hashes) of what the stage reads.
        seeds : dict, optional
            Random states, recorded for provenance.
        outputs : tuple of str or Path
            Files the stage writes: a stage whose outputs are missing is not up to date.
        force : bool
            Recompute everything: the stage is not up to date and its finished units are dropped.
        computes : bool
            False for stages that only draw saved results (figures, report): they keep the run's
            top-level ``environment`` (that of the stages that computed the results).

        Yields
        ------
        Stage
            ``up_to_date`` is True when the stage finished before with the same ``config`` and
            ``inputs`` and its outputs exist: the body should then read them instead of computing.
            Otherwise the body computes, records units with :meth:`Stage.finish_unit`, and must
            call :meth:`Stage.complete`; an exception (or leaving without completing) records the
            stage as failed, with its error, and is re-raised.
        """
        config, inputs = jsonable(config), jsonable(inputs or {})
        record = self.stage_record(name)
        up_to_date = (not force and record.get("status") == "complete" and record.get("config") == config
                      and record.get("inputs", {}) == inputs and all(self.exists(o) for o in outputs))
        handle = Stage(self, name, up_to_date=up_to_date, units={} if force else dict(record.get("units", {})))
        if up_to_date:
            yield handle
            return
        self.start_stage(name, config=config, seeds=seeds, inputs=inputs, keep_units=not force, computes=computes)
        try:
            yield handle
        except BaseException as exc:
            self.mark_failed(name, "interrupted" if isinstance(exc, KeyboardInterrupt) else exc)
            raise
        if not handle.completed:
            self.mark_failed(name, "the stage ended without completing")

    # ---- clips and failures ----------------------------------------------------------------
    def failures(self) -> pd.DataFrame:
        """All recorded failures (``failures.csv``), possibly empty."""
        if not self.exists(FAILURES):
            return pd.DataFrame(columns=FAILURE_COLUMNS)
        return pd.read_csv(self.file(FAILURES), dtype=str, keep_default_na=False)

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
        if failures.empty and not len(succeeded) and not self.exists(FAILURES):
            return
        with self._lock:
            self._replace_failures(stage, failures, succeeded)

    def _replace_failures(self, stage: str, failures: pd.DataFrame, succeeded: list[str]) -> None:
        old = self.failures()
        new = failures.assign(stage=stage)[FAILURE_COLUMNS] if not failures.empty else None
        touched = set(succeeded) | (set(failures["clip_id"]) if not failures.empty else set())
        keep = ~((old["stage"] == stage) & old["clip_id"].astype(str).isin(touched))
        parts = [t for t in (old[keep], new) if t is not None and not t.empty]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)
        self.write_table(FAILURES, table)

    def write_clips(self, clips: pd.DataFrame) -> None:
        """Store the clip table of this run (``clips.parquet``: manifest columns + ``audio_path``).

        Later stages read clip ids, groups and domains from it. Raises when a different clip
        set was stored before: one run folder holds one corpus.
        """
        with self._lock:  # check-then-write: two stages starting together store one clip table
            if self.exists(CLIPS):
                old = self.clips()
                if list(old["clip_id"]) != list(clips["clip_id"].astype(str)):
                    raise ParameterError(f"run folder {str(self.path)!r} already holds a different clip set "
                                         f"({len(old)} clips); use a new run folder for another corpus")
                return
            table = clips.copy()
            for col in table.columns:
                if table[col].dtype == object:
                    table[col] = table[col].astype("string")
            self.write_table(CLIPS, table)

    def clips(self) -> pd.DataFrame:
        """Return the run's clip table (see :meth:`write_clips`)."""
        return self.read_table(CLIPS)


class Stage:
    """A stage in progress (see :meth:`Run.stage`).

    Attributes
    ----------
    name : str
    up_to_date : bool
        The stage finished before with the same configuration and inputs: nothing to compute.
    completed : bool
        :meth:`complete` was called.
    """

    def __init__(self, run: Run, name: str, *, up_to_date: bool, units: dict[str, str]):
        self.run, self.name, self.up_to_date = run, name, up_to_date
        self._units = units
        self.completed = up_to_date

    def unit_done(self, key: str, fingerprint: str) -> bool:
        """Whether work unit ``key`` finished before with this ``fingerprint`` (settings and inputs)."""
        return self._units.get(key) == fingerprint

    def finish_unit(self, key: str, fingerprint: str) -> None:
        """Record that unit ``key`` finished (after its output was written), with its ``fingerprint``."""
        self._units[key] = fingerprint
        self.run._update_stage(self.name, lambda r: r.setdefault("units", {}).__setitem__(key, fingerprint))

    def complete(self, **summary: Any) -> None:
        """Record that the stage finished, with summary counts."""
        self.run.mark_complete(self.name, **summary)
        self.completed = True


class ChunkStore:
    """Finished chunks of a per-clip stage, kept under ``RUN/partial/<stage>/`` until it completes.

    Each chunk is a parquet table with a ``clip_id`` column, written atomically, so after a
    kill the store holds only whole chunks and :meth:`done_ids` says which clips to skip.
    """

    def __init__(self, run: Run, stage: str):
        self.folder = run.file(Path("partial") / stage)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.folder)

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
