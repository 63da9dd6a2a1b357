"""Adapters: turn the layouts of common datasets into clip manifests with the right groups and splits.

Each adapter reads the dataset's own layout and metadata files:

``librispeech``
    ``ROOT/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` (ROOT or ROOT/LibriSpeech),
    ``SPEAKERS.TXT`` for sex. Domain speech; group = speaker; split = subset (``train-clean-100``, ...).
    Labels: ``speaker``, ``chapter``; ``speaker_group`` = ``<speaker>-<chapter>``, the group of a speaker task
    (a speaker's chapters go to different folds; a speaker task grouped by speaker would test unseen speakers).
``vctk``
    ``ROOT/wav48/pNNN/*.wav`` (0.80) or ``ROOT/wav48_silence_trimmed/pNNN/*_mic1.flac`` (0.92; only mic1,
    the same utterances exist for mic2), ``speaker-info.txt`` for age, gender, accent. Domain speech;
    group = speaker; split = ``all`` (VCTK has no official split). Labels: ``speaker``; ``utterance`` = the
    prompt number (``p225_003`` -> ``003``: every speaker reads the same prompts), also ``speaker_group``: a
    speaker task grouped by prompt tests each speaker on sentences none of the training clips had.
``esc50``
    ``ROOT/meta/esc50.csv`` (filename, fold, target, category, esc10, src_file, take), ``ROOT/audio/``.
    Every category is environmental: ESC-50 has no speech or music class, and its human non-speech sounds
    (crying baby, laughing, coughing, snoring, ...) are kept as environmental sound. group = ``src_file``
    (the freesound clip the 5-s excerpts were cut from); split = ``fold1`` .. ``fold5``.
``urbansound8k``
    ``ROOT/metadata/UrbanSound8K.csv`` (slice_file_name, fsID, start, end, salience, fold, classID, class),
    ``ROOT/audio/fold<k>/``. ``street_music`` -> music, every other class -> environmental (``children_playing``
    is a scene label, kept environmental). group = ``fsID``; split = ``fold1`` .. ``fold10``.
``fsd50k``
    ``ROOT/FSD50K.ground_truth/dev.csv`` (fname, labels, mids, split) and ``eval.csv`` (fname, labels, mids),
    audio in ``ROOT/FSD50K.dev_audio/`` and ``ROOT/FSD50K.eval_audio/``. Labels include their AudioSet
    ancestors, so domain = speech when ``/m/09x0r`` (Speech) is among the mids, music when ``/m/04rlf``
    (Music) is, environmental otherwise; clips labelled both speech and music are left out (ambiguous).
    split = ``train`` / ``val`` (dev) or ``eval``; group = the freesound uploader from
    ``ROOT/FSD50K.metadata/<dev|eval>_clips_info_FSD50K.json`` when present (the authors split dev by
    uploader), else the clip id; license from the same file when present. Labels: ``labels`` and ``mids``
    (the clip's full lists, comma-separated), ``label`` = the first label of the list (FSD50K lists the most
    specific label first, then its ancestors).
``audioset``
    AudioSet segment CSVs (``*segments*.csv``: ``# ...`` comment header lines, then ``YTID, start_seconds,
    end_seconds, positive_labels`` with the label ids quoted, e.g. ``"/m/09x0r,/m/05zppz"``), the class index
    ``class_labels_indices.csv`` (index, mid, display_name) and the ontology ``ontology.json``, anywhere under
    ROOT; clips under ROOT as downloaded by the usual tools: ``Y<ytid>_<start>_<end>.<ext>``,
    ``<ytid>_<start>[_<end>].<ext>`` or ``<ytid>.<ext>`` (YouTube ids are 11 characters). Domain by the
    ontology: speech when a label is Speech (``/m/09x0r``) or below it, music when one is Music
    (``/m/04rlf``) or below it, environmental (AudioSet's other sounds) otherwise; both speech and music:
    left out (ambiguous). split = the CSV's name (``balanced_train``, ``eval``, ``unbalanced_train``);
    group = the YouTube id. Segments without a clip file are reported (count and first ids), not fatal.
    Labels: ``labels`` (display names, ``; ``-separated), ``mids``, ``label`` = the display name of a clip
    with one label (empty for multi-label clips: not part of a single-label task).
``nsynth``
    ``ROOT/[nsynth-<split>/]examples.json`` and ``audio/<note_str>.wav`` beside it. Domain music;
    group = the instrument (``instrument_str``: the notes of one instrument never straddle folds); split from the
    folder name (``nsynth-valid`` -> ``valid``). Labels: ``instrument_family``, ``instrument_source``
    (``acoustic`` / ``electronic`` / ``synthetic``), ``instrument``, ``pitch`` (MIDI), ``velocity``, and the
    exact ``f0_hz`` = 440 * 2 ** ((pitch - 69) / 12) of the note (ground truth for the pitch descriptors).
``folders``
    ``ROOT/<speech|music|environmental>/**/<audio files>``. group = the first sub-folder below the domain
    folder (e.g. a speaker or recording folder), or the file's stem for files directly in it; split = ``all``.

Every manifest gets ``path`` relative to the output manifest's folder, ``sample_rate`` and ``duration_s``
from the file header and ``sha256``, computed in threads. Files named by the metadata but absent are
dropped with a warning.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..audio import audio_info
from ..errors import ManifestError, ParameterError, check_choice
from ..log import logger
from ..manifest import DOMAINS, REQUIRED_COLUMNS, sha256_file
from ..runner import resolve_n_jobs

__all__ = ["ADAPTERS", "from_dataset", "AUDIO_EXTENSIONS", "FSD50K_SPEECH_MID", "FSD50K_MUSIC_MID",
           "read_audioset_segments", "audioset_clip_key", "midi_to_hz"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
FSD50K_SPEECH_MID = AUDIOSET_SPEECH_MID = "/m/09x0r"
FSD50K_MUSIC_MID = AUDIOSET_MUSIC_MID = "/m/04rlf"
_MUSIC_CLASSES_US8K = {"street_music"}


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ManifestError(f"{what} not found at {str(path)!r}; is ROOT the dataset's top folder?")
    return path


def _librispeech(root: Path) -> pd.DataFrame:
    if (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    sex: dict[str, str] = {}
    speakers = root / "SPEAKERS.TXT"
    if speakers.is_file():
        for line in speakers.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(";") or "|" not in line:
                continue
            fields = [f.strip() for f in line.split("|")]
            sex[fields[0]] = fields[1]
    files = sorted(root.glob("*/*/*/*.flac"))
    if not files:
        raise ManifestError(f"no <subset>/<speaker>/<chapter>/*.flac files under {str(root)!r}")
    rows = []
    for f in files:
        subset, speaker, chapter = f.parts[-4], f.parts[-3], f.parts[-2]
        rows.append({"audio_path": f, "clip_id": f.stem, "domain": "speech", "group": speaker, "split": subset,
                     "license": "CC-BY-4.0", "speaker": speaker, "chapter": chapter,
                     "speaker_group": f"{speaker}-{chapter}", "sex": sex.get(speaker, "")})
    return pd.DataFrame(rows)


def _vctk(root: Path) -> pd.DataFrame:
    info: dict[str, dict] = {}
    speaker_info = root / "speaker-info.txt"
    if speaker_info.is_file():
        for line in speaker_info.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3:
                sid = fields[0] if fields[0].startswith("p") else f"p{fields[0]}"
                info[sid] = {"age": fields[1], "gender": fields[2], "accent": fields[3] if len(fields) > 3 else ""}
    audio_dirs = [d for d in sorted(root.glob("wav48*")) if d.is_dir()]
    if not audio_dirs:
        raise ManifestError(f"no wav48/ or wav48_silence_trimmed/ folder under {str(root)!r}")
    files = sorted(f for d in audio_dirs for f in d.glob("*/*") if f.suffix.lower() in AUDIO_EXTENSIONS)
    if any(f.stem.endswith("_mic1") for f in files):
        files = [f for f in files if not f.stem.endswith("_mic2")]
    rows = []
    for f in files:
        speaker = f.parent.name
        utterance = f.stem.removesuffix("_mic1").removesuffix("_mic2").removeprefix(f"{speaker}_")
        rows.append({"audio_path": f, "clip_id": f.stem, "domain": "speech", "group": speaker, "split": "all",
                     "license": "CC-BY-4.0", "speaker": speaker, "utterance": utterance, "speaker_group": utterance,
                     **info.get(speaker, {})})
    return pd.DataFrame(rows)


def _esc50(root: Path) -> pd.DataFrame:
    meta = pd.read_csv(_require(root / "meta" / "esc50.csv", "ESC-50 meta/esc50.csv"))
    return pd.DataFrame({
        "audio_path": [root / "audio" / f for f in meta["filename"]],
        "clip_id": meta["filename"].str.replace(r"\.wav$", "", regex=True),
        "domain": "environmental", "group": meta["src_file"].astype(str),
        "split": "fold" + meta["fold"].astype(str), "license": "CC-BY-NC-3.0",
        "fold": meta["fold"].astype(int), "label": meta["category"], "esc10": meta["esc10"]})


def _urbansound8k(root: Path) -> pd.DataFrame:
    meta = pd.read_csv(_require(root / "metadata" / "UrbanSound8K.csv", "UrbanSound8K metadata/UrbanSound8K.csv"))
    return pd.DataFrame({
        "audio_path": [root / "audio" / f"fold{k}" / f for k, f in zip(meta["fold"], meta["slice_file_name"])],
        "clip_id": meta["slice_file_name"].str.replace(r"\.wav$", "", regex=True),
        "domain": ["music" if c in _MUSIC_CLASSES_US8K else "environmental" for c in meta["class"]],
        "group": meta["fsID"].astype(str), "split": "fold" + meta["fold"].astype(str),
        "license": "CC-BY-NC-3.0", "fold": meta["fold"].astype(int), "label": meta["class"],
        "salience": meta["salience"]})


def _fsd50k_domain(mids: str) -> str | None:
    ids = set(str(mids).split(","))
    speech, music = FSD50K_SPEECH_MID in ids, FSD50K_MUSIC_MID in ids
    if speech and music:
        return None
    return "speech" if speech else "music" if music else "environmental"


def _fsd50k(root: Path) -> pd.DataFrame:
    gt = _require(root / "FSD50K.ground_truth", "FSD50K ground truth folder FSD50K.ground_truth/")
    parts = []
    for part in ("dev", "eval"):
        csv = gt / f"{part}.csv"
        if not csv.is_file():
            continue
        meta = pd.read_csv(csv, dtype={"fname": str})
        clips_info = root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json"
        info = json.loads(clips_info.read_text(encoding="utf-8")) if clips_info.is_file() else {}
        domains = [_fsd50k_domain(m) for m in meta["mids"]]
        keep = [d is not None for d in domains]
        if not all(keep):
            logger.info("fsd50k %s: %d clip(s) labelled both Speech and Music left out", part, keep.count(False))
        meta = meta[keep]
        parts.append(pd.DataFrame({
            "audio_path": [root / f"FSD50K.{part}_audio" / f"{f}.wav" for f in meta["fname"]],
            "clip_id": f"{part}_" + meta["fname"],
            "domain": [d for d in domains if d is not None],
            "group": [str(info.get(f, {}).get("uploader", f)) for f in meta["fname"]],
            "split": meta["split"] if "split" in meta.columns else "eval",
            "license": [info.get(f, {}).get("license", "FSD50K per-clip Creative Commons") for f in meta["fname"]],
            "label": meta["labels"].str.split(",").str[0], "labels": meta["labels"], "mids": meta["mids"]}))
    if not parts:
        raise ManifestError(f"neither dev.csv nor eval.csv in {str(gt)!r}")
    return pd.concat(parts, ignore_index=True)


def _find_one(root: Path, pattern: str, what: str) -> Path:
    found = sorted(root.rglob(pattern))
    if not found:
        raise ManifestError(f"{what} ({pattern}) not found under {str(root)!r}; is ROOT the dataset's top folder?")
    return found[0]


def read_audioset_segments(path: Path) -> pd.DataFrame:
    """Read an AudioSet segment CSV: ``# ...`` header lines, then ``YTID, start, end, "mid,mid,..."`` rows.

    Returns
    -------
    pd.DataFrame
        ``ytid`` (str), ``start_seconds``, ``end_seconds`` (float), ``mids`` (list of str).
    """
    table = pd.read_csv(path, comment="#", header=None, skipinitialspace=True, quotechar='"', dtype={0: str},
                        names=["ytid", "start_seconds", "end_seconds", "positive_labels"], keep_default_na=False)
    if table.empty or table["positive_labels"].eq("").any():
        raise ManifestError(f"{str(path)!r} is not an AudioSet segment CSV (YTID, start_seconds, end_seconds, "
                            "\"positive_labels\" rows after '#' header lines)")
    return pd.DataFrame({"ytid": table["ytid"].str.strip(), "start_seconds": table["start_seconds"].astype(float),
                         "end_seconds": table["end_seconds"].astype(float),
                         "mids": table["positive_labels"].str.split(",").map(lambda v: [m.strip() for m in v])})


def _ontology_domains(ontology: list[dict]) -> dict[str, str]:
    """Mid -> ``speech`` (Speech or below it), ``music`` (Music or below it) or ``both``; other mids are absent."""
    children = {node["id"]: node.get("child_ids", []) for node in ontology}

    def below(top: str) -> set[str]:
        seen, stack = set(), [top]
        while stack:
            mid = stack.pop()
            if mid not in seen:
                seen.add(mid)
                stack.extend(children.get(mid, []))
        return seen

    speech, music = below(AUDIOSET_SPEECH_MID), below(AUDIOSET_MUSIC_MID)
    return {mid: "both" if mid in speech and mid in music else "speech" if mid in speech else "music"
            for mid in speech | music}


_AUDIOSET_NAME = re.compile(r"^(?:Y(?P<yid>[A-Za-z0-9_-]{11})_|(?P<id>[A-Za-z0-9_-]{11})(?:_|$))"
                            r"(?P<start>\d+(?:\.\d+)?)?(?:_\d+(?:\.\d+)?)?$")


def audioset_clip_key(stem: str) -> tuple[str, float | None] | None:
    """``(ytid, start seconds or None)`` from a downloaded clip's file stem, or None when it is no AudioSet name.

    ``Y--PJHxphWEs_30.000_40.000`` -> ``("--PJHxphWEs", 30.0)``; ``--PJHxphWEs_30`` -> ``("--PJHxphWEs", 30.0)``;
    ``--PJHxphWEs`` -> ``("--PJHxphWEs", None)``.
    """
    m = _AUDIOSET_NAME.match(stem)
    if not m:
        return None
    start = m.group("start")
    return m.group("yid") or m.group("id"), (float(start) if start is not None else None)


def _audioset(root: Path) -> pd.DataFrame:
    csvs = sorted(p for p in root.rglob("*segments*.csv"))
    if not csvs:
        raise ManifestError(f"no AudioSet segment CSV (*segments*.csv) under {str(root)!r}")
    names = pd.read_csv(_find_one(root, "class_labels_indices.csv", "AudioSet class index"))
    display = dict(zip(names["mid"], names["display_name"]))
    ontology = json.loads(_find_one(root, "ontology.json", "AudioSet ontology").read_text(encoding="utf-8"))
    domain_of = _ontology_domains(ontology)
    files: dict[tuple[str, float | None], Path] = {}
    for f in sorted(root.rglob("*")):
        key = audioset_clip_key(f.stem) if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file() else None
        if key is not None:
            files.setdefault((key[0], None if key[1] is None else round(key[1], 3)), f)
    rows, missing, ambiguous = [], [], 0
    for csv in csvs:
        split = csv.stem.replace("_segments", "").replace("segments", "") or csv.stem
        for seg in read_audioset_segments(csv).itertuples(index=False):
            f = files.get((seg.ytid, round(seg.start_seconds, 3))) or files.get((seg.ytid, None))
            if f is None:
                missing.append(seg.ytid)
                continue
            domains = {domain_of[m] for m in seg.mids if m in domain_of}
            if "both" in domains or {"speech", "music"} <= domains:
                ambiguous += 1
                continue
            unknown = [m for m in seg.mids if m not in display]
            if unknown:
                raise ManifestError(f"{csv}: segment {seg.ytid}: label id(s) {unknown} not in class_labels_indices.csv")
            labels = [display[m] for m in seg.mids]
            rows.append({"audio_path": f, "clip_id": f"{seg.ytid}_{seg.start_seconds:.3f}",
                         "domain": "speech" if "speech" in domains else "music" if "music" in domains
                         else "environmental", "group": seg.ytid, "split": split,
                         "license": "YouTube (per video); labels CC-BY-4.0", "label": labels[0] if len(labels) == 1
                         else "", "labels": "; ".join(labels), "mids": ",".join(seg.mids),
                         "start_seconds": seg.start_seconds, "end_seconds": seg.end_seconds})
    if missing:
        logger.warning("audioset: %d segment(s) of the CSVs have no clip file under %s (first: %s); left out",
                       len(missing), root, ", ".join(missing[:5]))
    if ambiguous:
        logger.warning("audioset: %d clip(s) labelled both Speech and Music left out (ambiguous domain)", ambiguous)
    if not rows:
        raise ManifestError(f"audioset: none of the segments of {[c.name for c in csvs]} has a clip file under "
                            f"{str(root)!r} (names Y<ytid>_<start>_<end>, <ytid>_<start> or <ytid>)")
    return pd.DataFrame(rows).drop_duplicates("clip_id")


def midi_to_hz(pitch: int) -> float:
    """Equal-tempered frequency of a MIDI note: ``440 * 2 ** ((pitch - 69) / 12)`` Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _nsynth(root: Path) -> pd.DataFrame:
    metas = sorted(root.glob("examples.json")) + sorted(root.glob("*/examples.json"))
    if not metas:
        raise ManifestError(f"no examples.json in {str(root)!r} or its sub-folders (nsynth-train/, ...)")
    rows = []
    for meta in metas:
        split = meta.parent.name.removeprefix("nsynth-") if meta.parent != root else root.name.removeprefix("nsynth-")
        for note_str, ex in json.loads(meta.read_text(encoding="utf-8")).items():
            pitch = int(ex["pitch"])
            rows.append({"audio_path": meta.parent / "audio" / f"{note_str}.wav", "clip_id": note_str,
                         "domain": "music", "group": ex["instrument_str"], "split": split, "license": "CC-BY-4.0",
                         "instrument_family": ex["instrument_family_str"],
                         "instrument_source": ex["instrument_source_str"], "instrument": ex["instrument_str"],
                         "pitch": pitch, "velocity": int(ex["velocity"]), "f0_hz": midi_to_hz(pitch),
                         "qualities": ",".join(ex.get("qualities_str", []))})
    return pd.DataFrame(rows)


def _folders(root: Path) -> pd.DataFrame:
    present = [d for d in DOMAINS if (root / d).is_dir()]
    if not present:
        raise ManifestError(f"{str(root)!r} has none of the domain folders {list(DOMAINS)}")
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in DOMAINS)
    if others:
        logger.warning("folders: ignoring sub-folders %s (domain folders are %s)", others, list(DOMAINS))
    rows = []
    for domain in present:
        for f in sorted((root / domain).rglob("*")):
            if not (f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS):
                continue
            rel = f.relative_to(root / domain)
            group = rel.parts[0] if len(rel.parts) > 1 else rel.stem
            clip_id = f"{domain}/" + rel.with_suffix("").as_posix()
            rows.append({"audio_path": f, "clip_id": clip_id, "domain": domain, "group": f"{domain}/{group}",
                         "split": "all", "license": ""})
    if not rows:
        raise ManifestError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in the domain folders of {str(root)!r}")
    return pd.DataFrame(rows)


ADAPTERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "librispeech": _librispeech, "vctk": _vctk, "esc50": _esc50, "urbansound8k": _urbansound8k,
    "fsd50k": _fsd50k, "audioset": _audioset, "nsynth": _nsynth, "folders": _folders,
}


def _file_facts(path: Path) -> tuple[int, float, str]:
    info = audio_info(path)
    return info.sample_rate, info.duration_s, sha256_file(path)


def from_dataset(kind: str, root: str | Path, out: str | Path, *, n_jobs: int | None = None) -> pd.DataFrame:
    """Write a manifest for a dataset in its own layout.

    Parameters
    ----------
    kind : {"librispeech", "vctk", "esc50", "urbansound8k", "fsd50k", "audioset", "nsynth", "folders"}
    root : str or Path
        The dataset's top folder.
    out : str or Path
        The manifest CSV to write; clip paths in it are relative to its folder.
    n_jobs : int, optional
        Threads for reading headers and hashing (default: all cores).

    Returns
    -------
    manifest : pd.DataFrame
        The rows written: the required columns, then the dataset's extra columns.

    Raises
    ------
    ManifestError
        The layout or metadata files are not where the dataset puts them, or no audio is found.
    """
    check_choice("kind", kind, ADAPTERS)
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"root must be an existing folder, got {str(root)!r}")
    out = Path(out)
    table = ADAPTERS[kind](root.resolve())
    present = [Path(p).is_file() for p in table["audio_path"]]
    if not all(present):
        missing = table.loc[[not p for p in present], "audio_path"]
        logger.warning("%s: %d file(s) named by the metadata are missing (first: %s); left out",
                       kind, len(missing), missing.iloc[0])
        table = table[present].reset_index(drop=True)
    if table.empty:
        raise ManifestError(f"{kind}: no audio files found under {str(root)!r}")
    with ThreadPoolExecutor(max_workers=resolve_n_jobs(n_jobs)) as pool:
        facts = list(pool.map(_file_facts, table["audio_path"]))
    base = out.resolve().parent
    table["path"] = [Path(os.path.relpath(Path(p), base)).as_posix() for p in table["audio_path"]]
    table["dataset"] = kind
    table["source"] = [f"{kind}:{Path(p).relative_to(root.resolve()).as_posix()}" for p in table["audio_path"]]
    table["sample_rate"] = [f[0] for f in facts]
    table["duration_s"] = [round(f[1], 6) for f in facts]
    table["sha256"] = [f[2] for f in facts]
    table["clip_id"] = [re.sub(r"\s+", "_", str(c)) for c in table["clip_id"]]
    extras = [c for c in table.columns if c not in REQUIRED_COLUMNS and c != "audio_path"]
    table = table[list(REQUIRED_COLUMNS) + extras]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    logger.info("%s: %d clips (%s) -> %s", kind, len(table),
                ", ".join(f"{d} {n}" for d, n in table["domain"].value_counts().items()), out)
    return table
