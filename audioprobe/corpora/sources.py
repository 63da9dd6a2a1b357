"""The source inventory: which installed Debian package files feed the default corpus and the pools.

Every candidate file is classified once, here, by rules on its installed path: its
domain (``speech``, ``music``, ``environmental``), a category (letters, descriptions,
instrument family, sound kind, ...), a language for speech, its ``group`` (the speaker
or source recording, the unit that must not straddle CV folds) and its license.
Files the rules do not name (user-interface beeps, game-monster voices, synthetic
single-cycle waveforms, human non-speech vocalisations) are left out.

Packages of :data:`POOL_PACKAGES` (added for the pretraining pools, after the default corpus
was fixed) feed the pools only: all their sources are in the ``"pool"`` partition, so the
default corpus does not change when they are installed. Each source of :data:`PACKAGES` is
assigned to exactly one *partition*, ``"default"`` (the shipped
corpus) or ``"pool"`` (the pretraining pools), by a stable rule: a hash of the
source's *partition key* compared with a per-domain fraction
(:data:`DEFAULT_FRACTION`). The key is the package plus the file's path for speech
(each spoken file is its own recording) and the package plus the group for music and
environmental sound (numbered variants ``wolf-hit-1``, ``wolf-hit-2`` of one recording
go to the same side). The assignment does not depend on what else is installed or on
the order in which corpora are built, so the default corpus and the pools are
disjoint by source.

Speakers are not documented in the packages: the speech ``group`` is the package and
language (``tuxpaint-stamps-default:fr``), a conservative stand-in for "speaker".
"""
from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import AudioprobeError, ParameterError

__all__ = [
    "PACKAGES", "POOL_PACKAGES", "POOL_SUFFIXES", "DEFAULT_FRACTION", "SourceFile", "CorpusBuildError",
    "package_version", "package_files",
    "classify", "partition_of", "unit_hash", "inventory", "require_packages", "AUDIO_SUFFIXES",
]

AUDIO_SUFFIXES = (".ogg", ".wav", ".flac")

#: Packages the recipe reads, with the license of their sound files (per-file exceptions in :func:`_license`).
PACKAGES = {
    "klettres-data": "GPL-2+",
    "tuxpaint-stamps-default": "GPL-2",
    "ktuberling-data": "GPL-2+",
    "sonic-pi-samples": "CC0-1.0",
    "lmms-common": "GPL-2+",
    "minetest-data": "CC-BY-SA-3.0",
    "wesnoth-1.16-data": "GPL-2+",
}

#: Packages that feed only the pretraining pools, with the license of their sound files (per-file
#: exceptions in :func:`_license`): professional voice prompts (one speaker per language, 16 kHz
#: G.722, decoded with ffmpeg) and game soundtracks.
POOL_PACKAGES = {
    "asterisk-core-sounds-en-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-es-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-fr-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-it-g722": "CC-BY-3.0",
    "asterisk-core-sounds-ru-g722": "CC-BY-3.0",
    "hyperrogue-music": "CC-BY-SA-3.0",
    "warzone2100-music": "GPL-2+",
    "colobot-common-sounds": "GPL-3+",
}
#: File suffixes of the pool-only packages' sound files (``.g722``: raw G.722, decoded with ffmpeg;
#: ``.opus``: Ogg Opus).
POOL_SUFFIXES = AUDIO_SUFFIXES + (".g722", ".opus")

#: Share of sources (by partition key) that go to the default corpus; the rest feed the pools.
DEFAULT_FRACTION = {"speech": 0.2, "music": 0.4, "environmental": 0.5}


class CorpusBuildError(AudioprobeError):
    """A corpus cannot be built: a package is missing or the sources cannot fill a request."""


@dataclass(frozen=True)
class SourceFile:
    """One installed audio file that may feed a corpus.

    Attributes
    ----------
    package, version : str
        The Debian package and its installed version.
    path : str
        Absolute installed path (as ``dpkg -L`` lists it).
    domain : str
        ``speech``, ``music`` or ``environmental``.
    category : str
        Finer kind: ``letters``, ``description``, ``drums``, ``animals``, ...
    language : str
        Language code for speech, ``""`` otherwise.
    group : str
        Speaker (speech: package and language) or source recording.
    license : str
        SPDX-style license id of the file.
    partition : str
        ``"default"`` or ``"pool"``.
    """

    package: str
    version: str
    path: str
    domain: str
    category: str
    language: str
    group: str
    license: str
    partition: str

    @property
    def source(self) -> str:
        """``package=version:path`` (the manifest's ``source`` column adds the crop offset)."""
        return f"{self.package}={self.version}:{self.path}"


def unit_hash(key: str) -> float:
    """Map a string to a stable number in [0, 1) (the first 8 bytes of its sha256)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def partition_of(domain: str, key: str) -> str:
    """``"default"`` or ``"pool"`` for a source with partition key ``key`` in ``domain``."""
    if domain not in DEFAULT_FRACTION:
        raise ParameterError(f"domain must be one of {list(DEFAULT_FRACTION)}, got {domain!r}")
    return "default" if unit_hash(key) < DEFAULT_FRACTION[domain] else "pool"


def _apt_hint(packages: list[str]) -> str:
    return f"install with: sudo apt-get install {' '.join(packages)}"


def require_packages(packages: list[str]) -> None:
    """Raise :class:`CorpusBuildError` naming every package of ``packages`` that is not installed."""
    if shutil.which("dpkg-query") is None:
        raise CorpusBuildError(f"dpkg-query not found: the corpus recipe reads Debian packages {packages}; "
                               "run it on Debian/Ubuntu with them installed (" + _apt_hint(packages) + ")")
    missing = [p for p in packages if package_version(p) is None]
    if missing:
        raise CorpusBuildError(f"package(s) {missing} not installed; {_apt_hint(missing)}")


@functools.lru_cache(maxsize=None)
def package_version(package: str) -> str | None:
    """Return the installed version of a Debian package, or None if it is not installed."""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0 or "\t" not in res.stdout:
        return None
    status, version = res.stdout.split("\t", 1)
    return version.strip() if status.strip().endswith(" installed") and version.strip() else None


def package_files(package: str) -> list[str]:
    """List the installed audio files of a package, sorted (``dpkg -L``; :data:`POOL_SUFFIXES` for pool-only ones)."""
    res = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise CorpusBuildError(f"package {package!r} not installed; {_apt_hint([package])}")
    suffixes = POOL_SUFFIXES if package in POOL_PACKAGES else AUDIO_SUFFIXES
    return sorted(line for line in res.stdout.splitlines()
                  if line.lower().endswith(suffixes) and Path(line).is_file())


def _stem_group(stem: str) -> str:
    """Strip a variant number from a file stem.

    ``wolf-hit-2`` -> ``wolf-hit``, ``default_dig_cracky.3`` -> ``default_dig_cracky``, ``snare07`` -> ``snare``,
    ``tabla_ghe4`` -> ``tabla_ghe``.
    """
    return re.sub(r"[-_.]?\d+$", "", stem) or stem


# --- per-package rules: path -> (domain, category, language, group) or None -------------------------------

_TUX_LANG = re.compile(r"_((?:[a-z]{2,3})(?:_[A-Za-z]{2})?)$")
_TUX_SKIP_ENV = ("symbols/", "military/", "seasonal/hanukkah/", "seasonal/halloween/ghost", "town/roadsigns/")


def _rule_klettres(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/klettres/<lang>/<alpha|syllab>/<file>
    if len(parts) != 6 or parts[2] != "klettres" or parts[4] not in ("alpha", "syllab"):
        return None
    lang = parts[3]
    return "speech", "letters" if parts[4] == "alpha" else "syllables", lang, f"klettres-data:{lang}"


def _rule_ktuberling(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/ktuberling/sounds/<lang>/<file>
    if len(parts) != 6 or parts[3] != "sounds":
        return None
    lang = parts[4]
    return "speech", "words", lang, f"ktuberling-data:{lang}"


def _rule_tuxpaint(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    inner = "/".join(rel.parts[4:])  # after usr/share/tuxpaint/stamps
    stem = rel.stem
    if "_desc" in stem:
        m = _TUX_LANG.search(stem.split("_desc", 1)[1])
        lang = m.group(1) if m else "en"
        return "speech", "description", lang, f"tuxpaint-stamps-default:{lang}"
    if inner.startswith("symbols/math/"):  # spoken numbers: 3.ogg (English), 3_fr.ogg
        m = _TUX_LANG.search(stem)
        lang = m.group(1) if m else "en"
        return "speech", "numbers", lang, f"tuxpaint-stamps-default:{lang}"
    if inner.startswith("symbols/alphabets/"):  # spoken letters, a_filled_fr.ogg; unsuffixed ones: unknown language
        m = re.search(r"_(?:filled|outline)_([a-z]{2}(?:_[A-Z]{2})?)$", stem)
        if not m:
            return None
        return "speech", "letters", m.group(1), f"tuxpaint-stamps-default:{m.group(1)}"
    if inner.startswith("hobbies/music/"):
        return "music", rel.parts[-2], "", f"tuxpaint-stamps-default:{_stem_group(stem)}"
    if inner.startswith(_TUX_SKIP_ENV) or inner.startswith("symbols/faces"):
        return None
    return "environmental", rel.parts[4], "", f"tuxpaint-stamps-default:{inner.rsplit('.', 1)[0]}"


_SONICPI_SKIP = ("mehackit_", "glitch_robot", "loop_3d_printer", "vinyl_", "misc_burp", "rand-stream")
_SONICPI_ENV = {"misc_crow": "animals", "perc_door": "household"}


def _rule_sonicpi(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    stem = rel.stem
    if stem.startswith(_SONICPI_SKIP) or rel.suffix != ".flac":
        return None
    if stem in _SONICPI_ENV:
        return "environmental", _SONICPI_ENV[stem], "", f"sonic-pi-samples:{stem}"
    return "music", stem.split("_", 1)[0], "", f"sonic-pi-samples:{_stem_group(stem)}"


_LMMS_MUSIC = ("basses", "bassloops", "beats", "drums", "instruments", "latin", "stringsnpads")


def _rule_lmms(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/lmms/samples/<kind>/<file>
    if len(parts) != 6 or parts[3] != "samples" or parts[4] not in _LMMS_MUSIC:
        return None
    return "music", parts[4], "", f"lmms-common:{parts[4]}/{_stem_group(rel.stem)}"


def _rule_minetest(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/games/minetest/games/minetest_game/mods/<mod>/sounds/<file>
    if "minetest_game" not in parts or rel.stem == "player_damage":
        return None
    stem = _stem_group(rel.stem)
    kind = next((k for k in ("footstep", "fire", "water", "lava", "door", "glass", "dig", "dug", "place",
                             "explode", "cart", "chest", "furnace", "tool") if k in stem), "other")
    return "environmental", kind, "", f"minetest-data:{stem}"


_WESNOTH_KEEP = {
    "ambient": ("birds", "campfire", "morning", "night", "ship"),
    "animals": ("bat-flapping", "bat-hit", "bite", "bite-small", "claws", "horse-canter", "horse-elf-canter",
                "horse-die", "horse-hit", "wolf-die", "wolf-growl", "wolf-hit", "tusker-charge", "tusker-die",
                "tusker-hit", "gryphon-shriek", "hiss", "hiss-big", "hiss-hit", "hiss-die"),
    "impacts": ("axe", "club", "club-miss", "dagger-swish", "dart", "fist", "flail", "flail-miss", "hatchet",
                "hatchet-miss", "knife", "mace", "mace-miss", "spear", "spear-miss", "staff", "staff-miss",
                "sword", "throw", "throwing-knife", "throwing-knife-miss", "sling", "sling-miss", "sling-big",
                "sling-big-miss", "bow", "bow-miss", "crossbow", "crossbow-miss", "net", "open-chest", "gold",
                "potion", "pincers", "tail"),
    "fire": ("fire", "fuse", "explosion", "torch", "torch-miss", "melee-fire", "flame-big", "flame-big-miss",
             "gunshot", "thunderstick", "thunderstick-miss"),
    "water": ("water-blast", "cave-in", "rumble", "mud-glob", "mud-fist"),
}
_WESNOTH_KIND = {name: kind for kind, names in _WESNOTH_KEEP.items() for name in names}


def _rule_wesnoth(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/games/wesnoth/1.16/data/core/sounds/[ambient/]<file>
    if "core" not in parts or "sounds" not in parts:
        return None
    stem = _stem_group(rel.stem)
    kind = "ambient" if parts[-2] == "ambient" and stem in _WESNOTH_KEEP["ambient"] else _WESNOTH_KIND.get(stem)
    if kind is None or (kind != "ambient" and parts[-2] != "sounds"):
        return None
    return "environmental", kind, "", f"wesnoth-1.16-data:{stem}"


_ASTERISK_SKIP = ("silence",)


def _rule_asterisk(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
    parts = rel.parts  # usr/share/asterisk/sounds/<lang_REGION_sex_Voice>/[<kind>/]<file>.g722
    if len(parts) not in (6, 7) or parts[:4] != ("usr", "share", "asterisk", "sounds") or rel.suffix != ".g722":
        return None
    voice = parts[4]
    kind = parts[5] if len(parts) == 7 else "prompts"
    if kind in _ASTERISK_SKIP or "_" not in voice:
        return None
    return "speech", kind, voice.split("_", 1)[0], f"asterisk-core-sounds:{voice}"


def _rule_soundtrack(package: str, folder: str, suffixes: tuple[str, ...] = (".ogg", ".opus")
                     ) -> Callable[[PurePosixPath], tuple[str, str, str, str] | None]:
    """Music tracks of a game soundtrack: every file under a ``folder`` path component; one group per track."""
    def rule(rel: PurePosixPath) -> tuple[str, str, str, str] | None:
        if folder not in rel.parts[:-1] or rel.suffix not in suffixes:
            return None
        track = rel.parts[rel.parts.index(folder) + 1:]
        return "music", "soundtrack", "", f"{package}:{PurePosixPath(*track).with_suffix('')}"
    return rule


_RULES = {
    "klettres-data": _rule_klettres,
    "tuxpaint-stamps-default": _rule_tuxpaint,
    "ktuberling-data": _rule_ktuberling,
    "sonic-pi-samples": _rule_sonicpi,
    "lmms-common": _rule_lmms,
    "minetest-data": _rule_minetest,
    "wesnoth-1.16-data": _rule_wesnoth,
    **{package: _rule_asterisk for package in POOL_PACKAGES if package.startswith("asterisk-core-sounds-")},
    "hyperrogue-music": _rule_soundtrack("hyperrogue-music", "music"),
    "warzone2100-music": _rule_soundtrack("warzone2100-music", "music"),
    "colobot-common-sounds": _rule_soundtrack("colobot-common-sounds", "music"),
}


def _license(package: str, path: str) -> str:
    if package == "minetest-data":
        if "/tnt/sounds/" in path or "doors_glass_door" in path:
            return "CC0-1.0"
        if "/doors/sounds/" in path:
            return "CC-BY-3.0"
    return PACKAGES[package] if package in PACKAGES else POOL_PACKAGES[package]


def classify(package: str, path: str, *, version: str = "") -> SourceFile | None:
    """Classify one installed file of ``package``; None if the recipe does not use it.

    Parameters
    ----------
    package : str
        One of :data:`PACKAGES` or :data:`POOL_PACKAGES`.
    path : str
        The file's absolute installed path.
    version : str, keyword-only
        The package version recorded in the result.
    """
    if package not in _RULES:
        raise ParameterError(f"package must be one of {sorted(_RULES)}, got {package!r}")
    rel = PurePosixPath(path.lstrip("/"))
    if rel.suffix.lower() not in (POOL_SUFFIXES if package in POOL_PACKAGES else AUDIO_SUFFIXES):
        return None
    found = _RULES[package](rel)
    if found is None:
        return None
    domain, category, language, group = found
    key = f"{package}:{path}" if domain == "speech" else group
    return SourceFile(package=package, version=version, path=path, domain=domain, category=category,
                      language=language, group=group, license=_license(package, path),
                      partition="pool" if package in POOL_PACKAGES else partition_of(domain, key))


def inventory(*, packages: list[str] | None = None, partition: str | None = None) -> list[SourceFile]:
    """Every usable source file of the installed packages, in a fixed order.

    Parameters
    ----------
    packages : list of str, optional
        Default: all of :data:`PACKAGES`; each must be installed. Names from :data:`POOL_PACKAGES`
        are allowed too (their sources are all in the ``pool`` partition).
    partition : {"default", "pool"}, optional
        Keep only sources of this partition.

    Returns
    -------
    sources : list of SourceFile
        Sorted by package, then path.

    Raises
    ------
    CorpusBuildError
        A package is not installed (the message names it and the apt command).
    """
    packages = list(PACKAGES) if packages is None else list(packages)
    unknown = [p for p in packages if p not in PACKAGES and p not in POOL_PACKAGES]
    if unknown:
        raise ParameterError(f"packages must be among {[*PACKAGES, *POOL_PACKAGES]}, got unknown {unknown}")
    if partition not in (None, "default", "pool"):
        raise ParameterError(f"partition must be 'default', 'pool' or None, got {partition!r}")
    require_packages(packages)
    out = []
    for package in sorted(packages):
        version = package_version(package) or ""
        for path in package_files(package):
            src = classify(package, path, version=version)
            if src is not None and (partition is None or src.partition == partition):
                out.append(src)
    return out
