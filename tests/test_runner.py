"""The parallel runner and the run folder: equivalence across backends, failures, kill-and-resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from clipjobs import rms_job
from synth import write_corpus

from audioprobe.errors import ParameterError
from audioprobe.manifest import read_manifest
from audioprobe.runner import map_clips
from audioprobe.runstore import Run

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), n=12)


def _with_bad_clips(manifest: Path) -> pd.DataFrame:
    clips = read_manifest(manifest)
    clips.loc[3, "audio_path"] = str(manifest.parent / "clips" / "missing.flac")
    Path(manifest.parent / "clips" / "corrupt.wav").write_bytes(b"junk" * 100)
    clips.loc[7, "audio_path"] = str(manifest.parent / "clips" / "corrupt.wav")
    return clips


def test_backends_give_identical_results_and_record_failures(manifest, tmp_path):
    clips = _with_bad_clips(manifest)
    results = {}
    for name, options in {"jobs1": dict(n_jobs=1), "jobs2": dict(n_jobs=2),
                          "dask": dict(n_jobs=2, scheduler="local")}.items():
        run = Run(tmp_path / name)
        out = map_clips(rms_job, clips, run=run, stage="rms", chunk_size=4, **options)
        results[name] = out
        assert len(out.table) + len(out.failures) == len(clips)           # nothing silently dropped
        assert sorted(out.failures["clip_id"]) == ["c003", "c007"]
        assert set(run.failures()["error_type"]) == {"ClipError"}
        assert "file not found" in run.failures().set_index("clip_id").loc["c003", "message"]
    for name in ("jobs2", "dask"):
        pd.testing.assert_frame_equal(results["jobs1"].table, results[name].table)
    assert list(results["jobs1"].table["clip_id"]) == [c for c in clips["clip_id"] if c not in ("c003", "c007")]


def test_rerun_skips_finished_clips_and_retries_failed_ones(manifest, tmp_path):
    clips = read_manifest(manifest)
    run = Run(tmp_path / "run")
    broken = clips.copy()
    broken.loc[0, "audio_path"] = "/nonexistent.flac"
    first = map_clips(rms_job, broken, run=run, stage="rms", n_jobs=1, chunk_size=5)
    assert list(first.failures["clip_id"]) == ["c000"]
    calls = []

    def counting_job(row):
        calls.append(row["clip_id"])
        return rms_job(row)

    second = map_clips(counting_job, clips, run=run, stage="rms", n_jobs=1)
    assert calls == ["c000"]                                # only the failed clip is redone
    assert second.failures.empty and run.failures().empty   # its failure record is cleared
    assert list(second.table["clip_id"]) == list(clips["clip_id"])


_KILLABLE = """
import sys
from audioprobe.log import set_verbosity
from audioprobe.manifest import read_manifest
from audioprobe.runner import map_clips
from audioprobe.runstore import Run
from clipjobs import rms_job
set_verbosity(quiet=True)
out = map_clips(rms_job, read_manifest(sys.argv[1]), run=Run(sys.argv[2]), stage="rms", n_jobs=2, chunk_size=2)
Run(sys.argv[2]).write_table("rms.parquet", out.table)
"""


def _run_script(manifest: Path, run: Path, delay: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "AUDIOPROBE_TEST_DELAY": delay}
    return subprocess.Popen([sys.executable, "-c", _KILLABLE, str(manifest), str(run)], env=env,
                            start_new_session=True)


@pytest.mark.slow  # ~10 s; the fast loop has resume (test_rerun_skips_finished_clips_and_retries_failed_ones) and a
# SIGKILLed stage resumed (test_run_lifecycle::test_sigkilled_probe_stage_resumes_and_equals_an_uninterrupted_run)
def test_sigkill_mid_run_then_resume_gives_identical_results(manifest, tmp_path):
    reference = tmp_path / "reference"
    assert _run_script(manifest, reference, "0").wait(timeout=120) == 0

    killed = tmp_path / "killed"
    proc = _run_script(manifest, killed, "0.3")
    chunks = killed / "partial" / "rms"
    deadline = time.time() + 90
    while time.time() < deadline and len(list(chunks.glob("chunk-*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)                      # the runner and its worker processes
    proc.wait()
    n_done = len(pd.concat([pd.read_parquet(c) for c in chunks.glob("chunk-*.parquet")]))
    assert 0 < n_done < 12, "the kill should land mid-run"
    assert not (killed / "rms.parquet").exists()

    assert _run_script(manifest, killed, "0").wait(timeout=120) == 0
    resumed = pd.read_parquet(killed / "rms.parquet")
    assert resumed["clip_id"].is_unique and len(resumed) == 12
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(reference / "rms.parquet"))
    leftovers = [p.name for p in killed.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    run = Run(tmp_path)
    run.write_table("t.parquet", pd.DataFrame({"a": [1]}))

    class Unwritable(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError):
        run.write_table("t.parquet", Unwritable({"a": [2]}))
    assert run.read_table("t.parquet")["a"].tolist() == [1]
    assert not list(tmp_path.glob(".*.tmp"))
    assert (run.file("t.parquet").stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_stage_records(tmp_path):
    run = Run(tmp_path)
    run.start_stage("features", config={"pitch": "praat"}, inputs={"manifest_sha256": "abc"})
    assert not run.is_complete("features")
    run.mark_complete("features", n_clips=3)
    assert run.is_complete("features", config={"pitch": "praat"})
    assert not run.is_complete("features", config={"pitch": "pyin"})
    info = run.info
    assert info["environment"]["versions"]["numpy"] and info["stages"]["features"]["summary"] == {"n_clips": 3}


_UNGUARDED = """
import sys
from audioprobe.manifest import read_manifest
from audioprobe.runner import map_clips

def n_chars(row):           # defined in __main__, and no `if __name__ == "__main__"` guard below
    return {"n": len(row["clip_id"])}

out = map_clips(n_chars, read_manifest(sys.argv[1]), n_jobs=2)
print(len(out.table), len(out.failures))
"""


def test_script_without_main_guard_runs_in_worker_processes(manifest):
    out = subprocess.run([sys.executable, "-c", _UNGUARDED, str(manifest)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["12", "0"]


def test_blas_threads_limits_every_blas_library_inside_and_restores_it():
    from threadpoolctl import threadpool_info

    from audioprobe.workers import blas_threads

    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert before, "numpy loads a BLAS library"
    with blas_threads(1):
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"] == before
    with pytest.raises(ParameterError, match="limit must be a positive integer, got 0"):
        blas_threads(0)


def test_blas_threads_scans_the_loaded_libraries_once_per_process(monkeypatch):
    """The library scan (~5 ms) runs once; features and probes set the limit per clip and per run through it."""
    from audioprobe import workers

    scans = []
    real = workers.ThreadpoolController
    monkeypatch.setattr(workers, "ThreadpoolController", lambda: scans.append(1) or real())
    workers._thread_controller.cache_clear()
    try:
        for _ in range(3):
            with workers.blas_threads(1):
                pass
        assert len(scans) == 1
    finally:
        workers._thread_controller.cache_clear()
