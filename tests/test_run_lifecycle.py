"""The stage lifecycle of a run folder: incremental, resumable, safe for parallel processes, failing fast."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synth import write_corpus
from test_probes_driver import make_run

from audioprobe.analysis import compare_run
from audioprobe.cli import main
from audioprobe.errors import ParameterError, StageError
from audioprobe.probes import driver, run_probes
from audioprobe.runner import FAIL_FAST_CLIPS, map_clips
from audioprobe.runstore import Run, atomic_path, remove_stale_temporaries

TESTS = Path(__file__).resolve().parent
PROBE_ARGS = dict(probes=("ridge", "rsa", "cka"), cv=3, n_permutations=19, n_bootstraps=0, random_state=3)


def _add_model(run: Run, name: str, domain: str, seed: int, tmp_path: Path) -> None:
    """Extract a third model into ``run``: activations of a run built the same way, relabelled."""
    donor = make_run(tmp_path / f"donor-{name}", models=("m-speech", "m-random", name), seed=seed)
    shutil.copytree(donor.file(f"activations/{name}"), run.file(f"activations/{name}"))
    info_path = run.file(f"activations/{name}/model.json")
    info = json.loads(info_path.read_text())
    info.update(pretrain_domain=domain, seed=seed)
    info_path.write_text(json.dumps(info))


def _count_layers(monkeypatch) -> list[str]:
    computed: list[str] = []
    real = driver._Units.write  # in the stage's process: layers may be probed in worker processes
    monkeypatch.setattr(driver._Units, "write",
                        lambda self, model, layer, *a: computed.append(f"{model['name']}/{layer['layer']}")
                        or real(self, model, layer, *a))
    return computed


def test_a_model_added_to_a_probed_run_is_probed_alone_and_compare_then_runs(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run")
    before = run_probes(run, **PROBE_ARGS)
    computed = _count_layers(monkeypatch)
    with pytest.raises(ParameterError, match="at least two pretraining domains"):
        compare_run(run, n_permutations=99, n_bootstraps=99)
    assert run.stage_record("compare")["status"] == "failed"  # a refused compare is not left "running"

    _add_model(run, "m-nonspeech", "nonspeech", 7, tmp_path)
    after = run_probes(run, **PROBE_ARGS)
    assert sorted(computed) == ["m-nonspeech/enc", "m-nonspeech/fc", "m-nonspeech/logmel"]
    assert run.stage_record("probe")["summary"]["n_layers_computed"] == 3
    per_layer = after[after["model_b"].isna()]
    old = per_layer[per_layer["model"] != "m-nonspeech"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before[before["model_b"].isna()].reset_index(drop=True))
    assert set(after["model"]) == {"m-speech", "m-random", "m-nonspeech"}
    assert ((after["model"] == "m-nonspeech") | (after["model_b"] == "m-nonspeech")).any()  # new CKA pairs

    stats = compare_run(run, n_permutations=99, n_bootstraps=99)
    assert "speech-nonspeech" in set(stats["contrast"])
    computed.clear()
    again = run_probes(run, **PROBE_ARGS)  # up to date: nothing computed, the same table
    assert computed == []
    pd.testing.assert_frame_equal(again, after)


def test_changed_settings_recompute_and_force_recomputes(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run", models=("solo",))
    run_probes(run, probes=("ridge",), cv=3)
    computed = _count_layers(monkeypatch)
    run_probes(run, probes=("ridge",), cv=4)
    assert len(computed) == 3
    run_probes(run, probes=("ridge",), cv=4, force=True)
    assert len(computed) == 6
    run_probes(run, probes=("ridge",), cv=4, layers=["enc"])  # a subset: its units are up to date
    assert len(computed) == 6


_PROBE_SCRIPT = """
import sys
from audioprobe.probes import run_probes
run_probes(sys.argv[1], probes=("ridge", "rsa", "cka"), cv=3, n_permutations=19, n_bootstraps=0, random_state=3,
           n_jobs=1)
"""


def test_sigkilled_probe_stage_resumes_and_equals_an_uninterrupted_run(tmp_path):
    models = ("m-a-speech", "m-b", "m-c", "m-d")
    reference = run_probes(make_run(tmp_path / "ref", models=models), **PROBE_ARGS, n_jobs=1)
    run = make_run(tmp_path / "killed", models=models)
    stop_after = int(np.random.default_rng().integers(1, 4 * 3 - 1))  # a random point inside the stage
    proc = subprocess.Popen([sys.executable, "-c", _PROBE_SCRIPT, str(run.path)], cwd=TESTS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_finished_units(run)) >= stop_after:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the probe stage finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert Run(run.path).stage_record("probe")["status"] == "running"
    done = len(Run(run.path).stage_record("probe")["units"])
    assert 1 <= done < 12
    resumed = run_probes(Run(run.path), **PROBE_ARGS)
    assert Run(run.path).stage_record("probe")["summary"]["n_layers_computed"] == 12 - done
    pd.testing.assert_frame_equal(resumed, reference)
    assert not list(run.path.rglob("*.tmp"))


def _finished_units(run: Run) -> dict:
    return run.stage_record("probe").get("units", {})  # run.json is replaced atomically: never half-written


def _fails_the_same(row: dict) -> dict:
    raise ValueError("Target size (32) must be at least input size (41)")


def _fails_differently(row: dict) -> dict:
    raise FileNotFoundError(f"no such file: {row['audio_path']}")


def test_every_clip_failing_the_same_way_stops_at_once(tmp_path):
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(40)], "audio_path": [f"/x/{i}.wav" for i in range(40)]})
    run = Run(tmp_path / "run")
    calls_before = time.monotonic()
    with pytest.raises(StageError, match=r"first 8 clips all failed with the same error.*Target size \(32\)"):
        map_clips(_fails_the_same, clips, run=run, stage="features", n_jobs=1)
    assert time.monotonic() - calls_before < 30
    assert FAIL_FAST_CLIPS == 8
    result = map_clips(_fails_differently, clips, run=run, stage="other", n_jobs=1)  # per-clip: all recorded
    assert len(result.failures) == 40 and result.table.empty


def test_features_stage_with_no_successful_clip_exits_non_zero(tmp_path, capsys):
    manifest = write_corpus(tmp_path / "corpus", n=3)
    for k, clip in enumerate(sorted((tmp_path / "corpus" / "clips").glob("*.flac"))):
        clip.write_bytes(b"not audio %d" % k * 50)  # every clip undecodable, each in its own way
    started = time.monotonic()
    assert main(["features", str(manifest), "-o", str(tmp_path / "run"), "-j", "1", "-q"]) == 2
    assert time.monotonic() - started < 60
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no clip of 3 succeeded" in err[0] and "failures.csv" in err[0]
    record = Run(tmp_path / "run").stage_record("features")
    assert record["status"] == "failed" and "no clip of 3 succeeded" in record["error"]
    assert len(Run(tmp_path / "run").failures()) == 3


def test_compare_without_probes_is_one_line(tmp_path, capsys):
    run = Run(tmp_path / "run")
    assert main(["compare", str(run.path), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "probes.parquet" in err[0] and "audioprobe probe" in err[0]


@pytest.mark.slow
def test_figures_and_report_notice_new_results(tmp_path, monkeypatch):
    from audioprobe.figures import make_all, registry
    from audioprobe.figures.run_report import build_report

    run = make_run(tmp_path / "run")
    run_probes(run, probes=("ridge",), cv=3)
    drawn: list[str] = []
    real = registry.save_figure
    def counting(fig, folder, name, **options):
        drawn.append(name)  # figures whose input is absent are not drawn, hence not saved
        return real(fig, folder, name, **options)

    monkeypatch.setattr(registry, "save_figure", counting)  # n_jobs=1: figures are drawn and saved in this process
    first = make_all(run, formats=("png",), n_jobs=1)
    n_first = len(drawn)
    assert first and n_first >= 1
    page = build_report(run)
    stamp = page.stat().st_mtime_ns
    assert make_all(run, formats=("png",), n_jobs=1) == first and len(drawn) == n_first  # up to date: nothing drawn
    assert build_report(run).stat().st_mtime_ns == stamp
    _add_model(run, "m-nonspeech", "nonspeech", 7, tmp_path)
    run_probes(run, probes=("ridge",), cv=3)
    make_all(run, formats=("png",), n_jobs=1)
    assert len(drawn) > n_first  # new probe rows: the figures are drawn again
    assert build_report(run).stat().st_mtime_ns != stamp


def test_temporary_files_are_removed_only_when_stale(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with atomic_path(folder / "run.json") as tmp:  # a write in flight in this (live) process
        tmp.write_text("{}")
        Run(folder)  # another Run() must not remove it
        assert tmp.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = folder / f".failures.csv.abc123.{int(dead.stdout)}@{_host()}.tmp"  # its writer is gone
    leftover.write_text("partial")
    remove_stale_temporaries(folder)
    assert not leftover.exists()
    other_host = folder / ".clips.parquet.abc.1@elsewhere.tmp"  # another host's write: kept while recent
    other_host.write_text("partial")
    remove_stale_temporaries(folder)
    assert other_host.exists()
    old = time.time() - 2 * 3600
    os.utime(other_host, (old, old))
    remove_stale_temporaries(folder)
    assert not other_host.exists()


def _host() -> str:
    from audioprobe import runstore

    return runstore._HOST


@pytest.mark.slow
def test_two_extract_processes_into_one_run_folder_lose_nothing(tmp_path):
    from test_extract import write_clips

    manifest = write_clips(tmp_path / "corpus", [1.0] * 10)
    table = pd.read_csv(manifest)
    table.loc[2, "path"] = "clips/missing.flac"                     # a missing file
    (manifest.parent / "clips" / "corrupt.flac").write_bytes(b"junk" * 64)
    table.loc[6, "path"] = "clips/corrupt.flac"                     # an undecodable file
    table.to_csv(manifest, index=False)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def extract(seed: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "audioprobe", "-q", "extract", "byola-v1:random", str(manifest),
                                 "-o", str(run), "--seed", str(seed), "--layers", "logmel", "fc.1", "--chunk-clips",
                                 "2", "--batch-size", "1", "-j", "1"], env=env, stderr=subprocess.PIPE, text=True)

    procs = [extract(0), extract(1)]  # started together
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    done = Run(run)
    names = sorted(p.name for p in done.file("activations").iterdir())
    assert names == ["byola-v1-random-seed0", "byola-v1-random-seed1"]
    for name in names:
        assert done.stage_record(f"extract:{name}")["status"] == "complete"
        assert done.file(f"activations/{name}/model.json").is_file()
    failures = done.failures()
    assert sorted(zip(failures["stage"], failures["clip_id"])) == sorted(
        (f"extract:{name}", clip) for name in names for clip in (table.loc[2, "clip_id"], table.loc[6, "clip_id"]))
    assert len(done.clips()) == 10
    assert not list(run.rglob("*.tmp"))


def test_report_of_a_run_named_by_a_relative_path_is_up_to_date_on_a_rerun(tmp_path, monkeypatch):
    """README names run folders relatively (`audioprobe report runs/mine`): the second call finds the page it wrote."""
    from audioprobe.figures.run_report import build_report

    run = make_run(tmp_path / "runs" / "mine")
    run_probes(run, probes=("ridge",), cv=3)
    monkeypatch.chdir(tmp_path)
    page = build_report("runs/mine")
    written = run.stage_record("report")["finished"]
    page.write_text(page.read_text() + "<!-- kept -->")  # a rewrite would drop this
    assert build_report("runs/mine") == page == tmp_path / "runs" / "mine" / "report.html"
    assert page.read_text().endswith("<!-- kept -->") and run.stage_record("report")["finished"] == written


def test_report_command_on_a_relative_run_folder_skips_an_up_to_date_page(tmp_path, monkeypatch):
    """The same through the command line, as README writes it: `audioprobe report runs/mine` twice writes once."""
    from audioprobe.cli import main

    run = make_run(tmp_path / "runs" / "mine")
    run_probes(run, probes=("ridge",), cv=3)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "runs/mine", "-q"]) == 0
    written = (run.stage_record("report")["finished"], (tmp_path / "runs" / "mine" / "report.html").stat().st_mtime_ns)
    assert main(["report", "runs/mine", "-q"]) == 0
    assert (run.stage_record("report")["finished"],
            (tmp_path / "runs" / "mine" / "report.html").stat().st_mtime_ns) == written


def test_report_embeds_the_figures_already_drawn_for_this_state(tmp_path, monkeypatch):
    from audioprobe.figures import make_all, run_report
    from audioprobe.figures.run_report import build_report

    run = make_run(tmp_path / "run")
    run_probes(run, probes=("ridge",), cv=3)
    before = build_report(run).read_bytes()  # draws its figures itself
    make_all(run, formats=("png",))
    calls: list[str] = []
    real = run_report.build_figures
    monkeypatch.setattr(run_report, "build_figures",
                        lambda tables, names: calls.extend(names) or real(tables, names=names))
    after = build_report(run, force=True).read_bytes()
    drawn = [n for n in calls if (run.file("figures") / f"{n}.png").exists()]
    assert drawn == []  # every figure make_all drew is embedded from its file, not drawn again
    def figures_section(page: bytes) -> bytes:
        start = page.index(b'<section id="figures">')
        return page[start:page.index(b"</section>", start)]

    assert figures_section(after) == figures_section(before)  # the same images, byte for byte
