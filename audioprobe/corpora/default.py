"""The default corpus recipe: 300 clips of 2.0 s (100 speech, 100 music, 100 environmental) from Debian packages.

``build_default(out)`` writes::

    OUT/clips/<domain>/<clip_id>.flac   16 kHz mono 16-bit FLAC, leading silence trimmed, peak -1 dBFS
    OUT/licenses/<license>.txt          the text of every license named in the manifest ('+' dropped)
    MANIFEST (default OUT/data_manifest.csv)

Only sources of the ``default`` partition (:mod:`.sources`) are used, so the corpus never
shares a source recording with the pretraining pools. Each domain's clips come from its
packages by fixed quotas (:data:`QUOTAS`; a package that runs short passes the rest to the
others). Within a package the candidates are visited round-robin across groups (languages,
instruments, sound kinds) in a stable hashed order, so the selection spreads widely and is
the same on every run. Each source gives one clip: the first 2.0 s after its leading
silence (zero-padded at the end when the sound is shorter; sources with less than
``MIN_CONTENT_S`` of sound are skipped). Identical clips are skipped.
Music from ``fluidsynth`` is fixed-pitch phrases of General-MIDI instruments with an exact
``f0_hz``; ``f0_hz`` is empty for every other clip.

Label columns (the tasks of the task probe): ``category`` (the source rule's kind: letters, words, drums,
animals, ...), ``language`` (speech clips), ``instrument`` (the GM program of the melody clips) and
``source_category`` (the kind of the environmental clips), see :func:`label_columns`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ClipError
from ..log import logger, progress
from ..runner import resolve_n_jobs
from .clips import crop, pcm16_digest, peak_normalise, write_flac
from .midi import (
    GM_PROGRAMS,
    PITCH_RANGE,
    SOUNDFONT,
    SOUNDFONT_LICENSE,
    SOUNDFONT_PACKAGE,
    fixed_pitch_phrase,
    melody_f0_hz,
    render_melodies,
)
from .selection import decode_trimmed, manifest_row, parallel_ordered, round_robin, split_of
from .sources import CorpusBuildError, SourceFile, inventory, package_version, partition_of, unit_hash

__all__ = ["build_default", "QUOTAS", "CLIP_S", "SAMPLE_RATE", "license_file_name", "write_licenses",
           "label_columns"]

CLIP_S = 2.0
SAMPLE_RATE = 16000
MIN_CONTENT_S = 0.3
#: Clips per domain and source package, in the order the packages are filled.
QUOTAS = {
    "speech": {"tuxpaint-stamps-default": 40, "klettres-data": 35, "ktuberling-data": 25},
    "music": {"fluidsynth": 40, "sonic-pi-samples": 28, "lmms-common": 28, "tuxpaint-stamps-default": 4},
    "environmental": {"tuxpaint-stamps-default": 35, "wesnoth-1.16-data": 35, "minetest-data": 30},
}

_COMMON_LICENSES = Path("/usr/share/common-licenses")
_MINETEST_COPYRIGHT = Path("/usr/share/doc/minetest-data/copyright")


def license_file_name(license_id: str) -> str:
    """Return the file under ``licenses/`` that holds a license's text: ``GPL-2+`` -> ``GPL-2.txt``."""
    return f"{license_id.rstrip('+')}.txt"


def _dep5_license_text(copyright_file: Path, name: str) -> str:
    """Return the stand-alone ``License: NAME`` paragraph of a machine-readable Debian copyright file."""
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"License: {name}" and (i == 0 or not lines[i - 1].strip()):
            body = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith((" ", "\t")):
                    break
                body.append("" if nxt.strip() == "." else nxt[1:])
            if body:
                return "\n".join(body) + "\n"
    raise CorpusBuildError(f"no stand-alone 'License: {name}' paragraph in {copyright_file}")


def _license_text(license_id: str) -> str:
    base = license_id.rstrip("+")
    if (_COMMON_LICENSES / base).is_file():
        return (_COMMON_LICENSES / base).read_text(encoding="utf-8")
    if base in ("CC-BY-SA-3.0", "CC-BY-3.0"):
        return _dep5_license_text(_MINETEST_COPYRIGHT, base)
    if base == SOUNDFONT_LICENSE:
        return Path(f"/usr/share/doc/{SOUNDFONT_PACKAGE}/copyright").read_text(encoding="utf-8")
    raise CorpusBuildError(f"no license text known for {license_id!r}")


def write_licenses(license_ids: list[str], folder: Path) -> None:
    """Write the text of each license into ``folder`` (see :func:`license_file_name`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for lic in sorted(set(license_ids)):
        (folder / license_file_name(lic)).write_text(_license_text(lic), encoding="utf-8")


def label_columns(*, domain: str, category: str, language: str, instrument: str = "") -> dict[str, str]:
    """Return the label columns of a corpus clip, from what its source rule (or melody) says.

    Parameters
    ----------
    domain, category, language : str
        Of the clip's :class:`~audioprobe.corpora.sources.SourceFile` (``category="midi"``, ``language=""``
        for melody clips).
    instrument : str
        The GM program name of a melody clip (:data:`~audioprobe.corpora.midi.GM_PROGRAMS`); ``""`` otherwise.

    Returns
    -------
    dict
        ``category``; ``language`` (speech clips, ``""`` otherwise); ``instrument``; ``source_category``
        (``category`` for environmental clips, ``""`` otherwise).
    """
    return {"category": category, "language": language if domain == "speech" else "", "instrument": instrument,
            "source_category": category if domain == "environmental" else ""}


def _phrases(n: int) -> list:
    """``n`` default-partition fixed-pitch phrases, cycling through the GM programs."""
    programs = sorted(GM_PROGRAMS)
    out, k = [], 0
    while len(out) < n:
        melody_id = f"phrase-{k:06d}"
        if partition_of("music", f"fluidsynth:{melody_id}") == "default":
            program = programs[len(out) % len(programs)]
            low, high = PITCH_RANGE[program]
            pitch = low + int(unit_hash("pitch:" + melody_id) * (high - low + 1))
            out.append(fixed_pitch_phrase(melody_id, program, pitch, duration_s=CLIP_S,
                                          random_state=int(unit_hash("phrase:" + melody_id) * 2**32)))
        k += 1
    return out


class _Collector:
    def __init__(self):
        self.items: list[dict] = []
        self.digests: set[str] = set()

    def offer(self, y: np.ndarray, **meta) -> bool:
        y = peak_normalise(y)
        digest = pcm16_digest(y)
        if digest in self.digests:
            return False
        self.digests.add(digest)
        self.items.append({"y": y, **meta})
        return True


def _candidate_clip(src: SourceFile) -> tuple[np.ndarray, float] | None:
    try:
        dec = decode_trimmed(src.path, sr=SAMPLE_RATE)
    except ClipError as exc:
        logger.debug("skipped: %s", exc)
        return None
    if len(dec.y) - dec.start < MIN_CONTENT_S * SAMPLE_RATE:
        return None
    seg = crop(dec.y, dec.start, round(CLIP_S * SAMPLE_RATE))
    return (seg, dec.start / SAMPLE_RATE) if np.max(np.abs(seg)) > 1e-4 else None


def _take(collector: _Collector, candidates: list[SourceFile], n: int, *, n_jobs: int, bar) -> int:
    taken = 0
    if n <= 0:
        return 0
    for src, got in parallel_ordered(_candidate_clip, candidates, n_jobs=n_jobs, batch=16):
        if got is None:
            continue
        seg, offset = got
        if collector.offer(seg, domain=src.domain, dataset=src.package, group=src.group, license=src.license,
                           source=f"{src.source}@{offset:.3f}s", f0_hz=np.nan, key=src.path,
                           labels=label_columns(domain=src.domain, category=src.category, language=src.language)):
            taken += 1
            bar.update(1)
            if taken == n:
                break
    return taken


def _take_phrases(collector: _Collector, n: int, *, bar) -> int:
    phrases = _phrases(n)
    version = f"fluidsynth={package_version('fluidsynth')}+{SOUNDFONT_PACKAGE}={package_version(SOUNDFONT_PACKAGE)}"
    taken = 0
    for mel, y in zip(phrases, render_melodies(phrases, duration_s=CLIP_S, sr=SAMPLE_RATE)):
        name = GM_PROGRAMS[mel.program]
        start = int(np.argmax(np.abs(y) > 1e-4))
        seg = crop(y, start, len(y))
        if collector.offer(seg, domain="music", dataset="fluidsynth", group=f"fluidsynth:{name}",
                           license=SOUNDFONT_LICENSE, f0_hz=melody_f0_hz(mel),
                           labels=label_columns(domain="music", category="midi", language="", instrument=name),
                           source=f"{version}:{SOUNDFONT.name}:{mel.melody_id} program={mel.program} ({name}) "
                                  f"pitch={mel.notes[0].pitch}@{start / SAMPLE_RATE:.3f}s",
                           key=mel.melody_id):
            taken += 1
            bar.update(1)
    return taken


def build_default(out: str | Path, *, manifest: str | Path | None = None, n_jobs: int | None = None) -> Path:
    """Build the default corpus into ``out``.

    Parameters
    ----------
    out : str or Path
        Folder for ``clips/`` and ``licenses/`` (their old content is replaced).
    manifest : str or Path, optional
        Where to write the manifest (default ``out/data_manifest.csv``); clip paths in it are
        relative to its folder.
    n_jobs : int, optional
        Decoding threads (default: all cores).

    Returns
    -------
    manifest : Path

    Raises
    ------
    CorpusBuildError
        A package is missing (named, with the apt command) or a domain cannot be filled.
    """
    n_jobs = resolve_n_jobs(n_jobs)
    out = Path(out)
    manifest = Path(manifest) if manifest is not None else out / "data_manifest.csv"
    sources = inventory(partition="default")
    collector = _Collector()
    bar = progress(total=sum(sum(q.values()) for q in QUOTAS.values()), desc="default corpus")
    try:
        for domain, quotas in QUOTAS.items():
            queues = {pkg: round_robin([s for s in sources if s.domain == domain and s.package == pkg],
                                       group=lambda s: s.group, key=lambda s: s.path, salt="default:")
                      for pkg in quotas if pkg != "fluidsynth"}
            used: dict[str, int] = {}
            for pkg, quota in quotas.items():
                if pkg == "fluidsynth":
                    used[pkg] = _take_phrases(collector, quota, bar=bar)
                else:
                    used[pkg] = _take(collector, queues[pkg], quota, n_jobs=n_jobs, bar=bar)
            short = sum(quotas.values()) - sum(used.values())
            for pkg in queues:  # a package that ran short passes the rest to the others
                if short == 0:
                    break
                taken_paths = {it["key"] for it in collector.items}
                rest = [s for s in queues[pkg] if s.path not in taken_paths]
                short -= _take(collector, rest, short, n_jobs=n_jobs, bar=bar)
            if short:
                raise CorpusBuildError(f"the {domain} sources of the default partition fill only "
                                       f"{sum(quotas.values()) - short} of {sum(quotas.values())} clips")
    finally:
        bar.close()

    clips_dir = out / "clips"
    if clips_dir.exists():
        shutil.rmtree(clips_dir)
    root = manifest.resolve().parent
    rows, counters = [], {d: 0 for d in QUOTAS}
    for it in collector.items:
        d = it["domain"]
        clip_id = f"{d}-{counters[d]:03d}"
        counters[d] += 1
        file = clips_dir / d / f"{clip_id}.flac"
        write_flac(file, it["y"], SAMPLE_RATE)
        row = manifest_row(clip_id=clip_id, file=file, root=root, domain=d, dataset=it["dataset"],
                           group=it["group"], split=split_of(it["group"]), license=it["license"],
                           source=it["source"], sample_rate=SAMPLE_RATE, n_samples=len(it["y"]),
                           category=it["labels"]["category"], language=it["labels"]["language"], f0_hz=it["f0_hz"],
                           instrument=it["labels"]["instrument"], source_category=it["labels"]["source_category"])
        rows.append(row)
    table = pd.DataFrame(rows)
    write_licenses(table["license"].tolist(), out / "licenses")
    manifest.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(manifest, index=False, float_format="%.10g")
    logger.info("default corpus: %d clips -> %s", len(table), manifest)
    return manifest
