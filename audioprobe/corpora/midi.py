"""Music with known notes: melodies generated in code, rendered with FluidSynth and the FluidR3Mono GM soundfont.

A :class:`Melody` is a list of notes for one General-MIDI program. Many melodies are
written into one standard MIDI file, each in its own time slot, rendered by one
``fluidsynth`` call (reverb and chorus off, float output: no dither), and cut back into
one signal per melody. Fixed-pitch phrases (:func:`fixed_pitch_phrase`) repeat one note
in a rhythm, so the clip's fundamental frequency is exactly the note's
(``librosa.midi_to_hz``); :func:`random_melody` moves through a scale (pretraining pools).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..errors import ParameterError
from .sources import CorpusBuildError, package_version

__all__ = ["Note", "Melody", "GM_PROGRAMS", "SOUNDFONT", "SOUNDFONT_PACKAGE", "fixed_pitch_phrase",
           "random_melody", "midi_file_bytes", "render_melodies", "melody_f0_hz"]

SOUNDFONT_PACKAGE = "fluidr3mono-gm-soundfont"
SOUNDFONT = Path("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3")
SOUNDFONT_LICENSE = "MIT"

#: General-MIDI programs used (0-based program number -> name): several instrument families.
GM_PROGRAMS = {
    0: "acoustic_grand_piano", 11: "vibraphone", 19: "church_organ", 24: "nylon_guitar", 32: "acoustic_bass",
    40: "violin", 42: "cello", 56: "trumpet", 65: "alto_sax", 68: "oboe", 71: "clarinet", 73: "flute",
}
#: Comfortable MIDI pitch range per program (low, high), inclusive.
PITCH_RANGE = {0: (48, 84), 11: (53, 84), 19: (36, 72), 24: (40, 76), 32: (28, 55), 40: (55, 88),
               42: (36, 67), 56: (55, 79), 65: (49, 77), 68: (58, 86), 71: (50, 84), 73: (60, 91)}

_TICKS_PER_QUARTER = 480
_TEMPO_US = 500_000  # 120 bpm -> 960 ticks per second
_TICKS_PER_S = _TICKS_PER_QUARTER * 1_000_000 // _TEMPO_US


@dataclass(frozen=True)
class Note:
    """One note: onset and length in seconds (relative to the melody start), MIDI pitch, velocity 1-127."""

    start_s: float
    dur_s: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Melody:
    """Notes for one GM ``program``; ``melody_id`` names it in manifests."""

    melody_id: str
    program: int
    notes: tuple[Note, ...]


def melody_f0_hz(melody: Melody) -> float:
    """Return the fundamental frequency (Hz) of a single-pitch melody; NaN when its notes differ in pitch."""
    import librosa

    pitches = {n.pitch for n in melody.notes}
    return float(librosa.midi_to_hz(pitches.pop())) if len(pitches) == 1 else float("nan")


def _check_program(program: int) -> None:
    if program not in GM_PROGRAMS:
        raise ParameterError(f"program must be one of {sorted(GM_PROGRAMS)}, got {program!r}")


def fixed_pitch_phrase(melody_id: str, program: int, pitch: int, *, duration_s: float = 2.0,
                       random_state: int | np.random.Generator = 0) -> Melody:
    """Return a rhythm of 1-4 notes that all have the same pitch, filling ``duration_s`` seconds.

    Parameters
    ----------
    melody_id : str
    program : int
        GM program, one of :data:`GM_PROGRAMS`.
    pitch : int
        MIDI note number (69 = A4 = 440 Hz).
    duration_s : float, keyword-only
        Length of the phrase in seconds; the last note ends at ``duration_s``.
    random_state : int or Generator, keyword-only
        Draws the number of notes, their onsets and velocities.
    """
    _check_program(program)
    rng = np.random.default_rng(random_state)
    n = int(rng.integers(1, 5))
    cuts = np.sort(rng.uniform(0.25, duration_s - 0.25, size=n - 1)) if n > 1 else np.array([])
    onsets = np.concatenate([[0.0], cuts])
    ends = np.concatenate([cuts, [duration_s]])
    notes = tuple(Note(float(a), float(b - a) * 0.95, int(pitch), int(rng.integers(70, 111)))
                  for a, b in zip(onsets, ends))
    return Melody(melody_id, program, notes)


def random_melody(melody_id: str, program: int, *, duration_s: float = 2.0,
                  random_state: int | np.random.Generator = 0) -> Melody:
    """Return a melody of notes drawn from a major scale within the program's range, filling ``duration_s`` seconds."""
    _check_program(program)
    rng = np.random.default_rng(random_state)
    low, high = PITCH_RANGE[program]
    tonic = int(rng.integers(low, max(low + 1, high - 12)))
    scale = [tonic + s + 12 * o for o in (0, 1) for s in (0, 2, 4, 5, 7, 9, 11) if tonic + s + 12 * o <= high]
    notes, t = [], 0.0
    while t < duration_s - 0.1:
        dur = float(min(rng.choice([0.125, 0.25, 0.375, 0.5]), duration_s - t))
        notes.append(Note(t, dur * 0.95, int(rng.choice(scale)), int(rng.integers(60, 111))))
        t += dur
    return Melody(melody_id, program, tuple(notes))


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file_bytes(melodies: list[Melody], *, slot_s: float) -> bytes:
    """Return a format-0 standard MIDI file playing each melody in its own slot of ``slot_s`` seconds, on channel 0.

    Melody ``i`` starts at ``i * slot_s`` seconds (960 ticks per second, 120 bpm).
    """
    events: list[tuple[int, int, bytes]] = []  # (tick, order, message): program changes before notes
    for i, mel in enumerate(melodies):
        base = round(i * slot_s * _TICKS_PER_S)
        events.append((base, 0, bytes([0xC0, mel.program])))
        for note in mel.notes:
            on = base + round(note.start_s * _TICKS_PER_S)
            off = base + round((note.start_s + note.dur_s) * _TICKS_PER_S)
            events.append((on, 2, bytes([0x90, note.pitch, note.velocity])))
            events.append((off, 1, bytes([0x80, note.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray(b"\x00\xff\x51\x03" + _TEMPO_US.to_bytes(3, "big"))
    last = 0
    for tick, _, msg in events:
        track += _varlen(tick - last) + msg
        last = tick
    end = round(len(melodies) * slot_s * _TICKS_PER_S)
    track += _varlen(max(0, end - last)) + b"\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") \
        + _TICKS_PER_QUARTER.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def render_melodies(melodies: list[Melody], *, duration_s: float, sr: int = 16000,
                    tail_s: float = 1.0, gain: float = 0.5) -> list[np.ndarray]:
    """Render melodies with FluidSynth; one signal of ``duration_s`` seconds per melody.

    Parameters
    ----------
    melodies : list of Melody
    duration_s : float, keyword-only
        Seconds kept per melody, from its slot start.
    sr : int, keyword-only
        Output sample rate (Hz).
    tail_s : float, keyword-only
        Extra slot time after ``duration_s`` so one melody's release does not reach the next.
    gain : float, keyword-only
        FluidSynth master gain.

    Returns
    -------
    signals : list of np.ndarray, each shape (round(duration_s * sr),), float32

    Raises
    ------
    CorpusBuildError
        ``fluidsynth`` or the soundfont package is not installed.
    """
    missing = [p for p, ok in (("fluidsynth", shutil.which("fluidsynth") is not None),
                               (SOUNDFONT_PACKAGE, SOUNDFONT.is_file() and package_version(SOUNDFONT_PACKAGE)))
               if not ok]
    if missing:
        raise CorpusBuildError(f"package(s) {missing} not installed; install with: "
                               f"sudo apt-get install {' '.join(missing)}")
    if not melodies:
        return []
    slot_s = duration_s + tail_s
    n = round(duration_s * sr)
    with tempfile.TemporaryDirectory(prefix="audioprobe-midi-") as tmp:
        mid, wav = Path(tmp) / "melodies.mid", Path(tmp) / "melodies.wav"
        mid.write_bytes(midi_file_bytes(melodies, slot_s=slot_s))
        cmd = ["fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(sr),
               "-T", "wav", "-O", "float", "-F", str(wav), str(SOUNDFONT), str(mid)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0 or not wav.is_file():
            raise CorpusBuildError(f"fluidsynth failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
        y = load_audio(wav, sr=None)
    total = round(len(melodies) * slot_s * sr) + n
    if len(y) < total:
        y = np.concatenate([y, np.zeros(total - len(y), dtype=np.float32)])
    return [y[round(i * slot_s * sr):round(i * slot_s * sr) + n].copy() for i in range(len(melodies))]
