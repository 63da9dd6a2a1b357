"""Model specs: the strings that name a model everywhere in audioprobe.

=============================  ============================================================
spec                           model
=============================  ============================================================
``byola-v1:PATH.pth``          BYOL-A v1 (AudioNTT2020) with a checkpoint; d read from it
``byola-v2:PATH.pth``          BYOL-A v2 (AudioNTT2022) with a checkpoint
``byola-v1:random``            the same architecture with seeded random weights (the
``byola-v2:random``            control; seed = ``random_state``, d = 512 / 3072)
``module:pkg.mod:factory``     any torch module ``pkg.mod.factory()`` (built after seeding
``module:pkg.mod:factory:CKPT``  torch with ``random_state``), optionally loaded from CKPT
``DOMAIN/seedK``               a shipped checkpoint ``models/weights/DOMAIN/seedK.pt``
=============================  ============================================================

Checkpoints are plain state_dicts, read with ``torch.load(weights_only=True)`` (a file that
would need pickled code is refused) and loaded with ``strict=True``. A JSON sidecar beside a
checkpoint (same stem, ``.json``; shipped checkpoints always have one) supplies ``arch``,
``d``, ``norm_mean``, ``norm_std``, ``domain`` and ``seed`` (``module:`` checkpoints: the
last four). A ``pretrain_domain``/``seed`` given to :func:`load_model` (``--domain``/``--seed``)
only fills in what the checkpoint does not record; one that contradicts a sidecar, the table
of known official checkpoints or a random-weight control is an error naming both values.
Official checkpoints carry no normalisation stats: the published v1 stats are used unless
the caller passes others, and ``norm_source`` records which.

A ``module:`` factory returns any ``nn.Module`` encoder. It may set:

* ``input_kind = "waveform"`` to receive the 16 kHz waveform (batch, n_samples) instead of
  the normalised log-mel (batch, 1, 64, frames);
* a method ``frames_per_clip(n_samples) -> int`` if it folds frames or patches into the
  batch axis (a pitch CNN on 1024-sample frames, VGGish-style 0.96 s patches): every
  layer then returns (batch x frames) rows, clip-major, and is unfolded and pooled over
  the frames (see :class:`.pipeline.Pipeline`);
* ``d`` (int), its embedding width, recorded in ``model.json``; ``default_layers``, the
  layer names extracted by default.

Its layers are its module names; a module called several times per forward pass is one
layer per call, ``name#0``, ``name#1``, ... (``audioprobe layers SPEC`` lists them).
"""
from __future__ import annotations

import importlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..contract import PRETRAIN_DOMAINS, SHIPPED_SPEC
from ..errors import AudioprobeError, ParameterError
from ..manifest import sha256_file
from .byola import AudioNTT2020, AudioNTT2022
from .frontend import BYOLA_V1_NORM
from .pipeline import INPUT_KINDS, Pipeline

__all__ = ["LoadedModel", "load_model", "shipped_models", "load_state_dict", "WEIGHTS_DIR", "PRETRAIN_DOMAINS"]

#: where shipped checkpoints live: ``<domain>/seed<k>.pt`` + ``seed<k>.json``
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: sha256 of official checkpoints -> (pretraining domain, description)
KNOWN_CHECKPOINTS = {
    "6cc64226318494f06ef41d7e5810be7d37abfd6490da45abdab48f188c5332e2":
        ("mixed", "official BYOL-A v1 d=512 (AudioSet)"),
}


@dataclass
class LoadedModel:
    """A network ready to probe, with what is known about it.

    Attributes
    ----------
    pipeline : Pipeline
        Front end + normalisation + encoder (layer names: see :class:`Pipeline`).
    name : str
        Folder name under ``activations/``.
    spec : str
        The spec it was loaded from.
    arch : str
        ``byola-v1``, ``byola-v2`` or ``module:pkg.mod:factory``.
    d : int or None
        Embedding width (None when a module does not declare ``d``).
    pretrain_domain : str
        ``speech``, ``nonspeech``, ``mixed`` or ``none`` (random weights, unknown).
    seed : int or None
        Pretraining seed, or the seed of the random weights of a control.
    control : str or None
        ``random-weights`` for the random-weight control.
    checkpoint_sha256 : str or None
    norm_mean, norm_std : float
    norm_source : str
        Where the stats come from: ``published-v1``, ``sidecar``, ``user``.
    """

    pipeline: Pipeline
    name: str
    spec: str
    arch: str
    d: int | None
    pretrain_domain: str
    seed: int | None
    control: str | None
    checkpoint_sha256: str | None
    norm_mean: float
    norm_std: float
    norm_source: str

    def metadata(self) -> dict:
        """Return the fields of ``model.json`` that describe the model (device and timing excluded)."""
        return {key: getattr(self, key) for key in (
            "name", "spec", "arch", "d", "pretrain_domain", "seed", "control", "checkpoint_sha256",
            "norm_mean", "norm_std", "norm_source")}


def shipped_models(*, weights_dir: str | Path | None = None) -> list[str]:
    """Names (``DOMAIN/seedK``) of the checkpoints shipped under ``weights_dir`` (default :data:`WEIGHTS_DIR`)."""
    root = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    names = [f"{p.parent.name}/{p.stem}" for p in root.glob("*/seed*.pt") if p.with_suffix(".json").is_file()]
    return sorted(n for n in names if SHIPPED_SPEC.match(n))


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a plain state_dict, refusing files that need pickled code.

    Parameters
    ----------
    path : str or Path
        A ``.pth``/``.pt`` file holding a dict of tensors (or ``{"state_dict": ...}``).

    Returns
    -------
    dict of str to torch.Tensor
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"checkpoint file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, EOFError) as exc:
        raise AudioprobeError(f"checkpoint {str(path)!r} cannot be read as plain weights with "
                              f"torch.load(weights_only=True): it needs pickled code or is not a torch file "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                              "Save a plain state_dict (torch.save(model.state_dict(), path)).") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AudioprobeError(f"checkpoint {str(path)!r} is not a state_dict (a dict of tensors)")
    return state


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise AudioprobeError(f"checkpoint {str(path)!r} does not match {type(module).__name__}: {exc}") from exc


def _read_sidecar(checkpoint: Path) -> dict:
    sidecar = checkpoint.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise AudioprobeError(f"checkpoint sidecar {str(sidecar)!r} is not valid JSON: {exc}") from exc


def _seeded(factory, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def _byola_encoder(version: str, state: dict[str, torch.Tensor] | None) -> nn.Module:
    if version == "v1":
        d = int(state["fc.0.weight"].shape[0]) if state and "fc.0.weight" in state else 512
        return AudioNTT2020(d)
    if state and "fc.0.weight" in state and "fc.3.weight" in state:
        hidden = int(state["fc.0.weight"].shape[0])
        return AudioNTT2022(int(state["fc.0.weight"].shape[1] + state["fc.3.weight"].shape[0]), mlp_hidden_d=hidden)
    return AudioNTT2022()


def _norm(sidecar: dict, norm_mean: float | None, norm_std: float | None) -> tuple[float, float, str]:
    if (norm_mean is None) != (norm_std is None):
        raise ParameterError(f"norm_mean and norm_std go together, got norm_mean={norm_mean!r}, norm_std={norm_std!r}")
    if norm_mean is not None:
        return float(norm_mean), float(norm_std), "user"
    if "norm_mean" in sidecar and "norm_std" in sidecar:
        return float(sidecar["norm_mean"]), float(sidecar["norm_std"]), "sidecar"
    return BYOLA_V1_NORM[0], BYOLA_V1_NORM[1], "published-v1"


def load_model(spec: str, *, random_state: int = 0, name: str | None = None, pretrain_domain: str | None = None,
               seed: int | None = None, norm_mean: float | None = None, norm_std: float | None = None,
               weights_dir: str | Path | None = None) -> LoadedModel:
    """Build the network a spec names (see the module docstring for the specs).

    Parameters
    ----------
    spec : str
    random_state : int, keyword-only
        Seed of random weights (``byola-v*:random``, modules built without a checkpoint).
    name : str, optional
        Folder name of its activations; default derived from the spec.
    pretrain_domain : str, optional
        One of ``PRETRAIN_DOMAINS``; fills in the domain of a checkpoint that does not record it
        (no sidecar ``domain``, not a known official checkpoint).
    seed : int, optional
        Fills in the pretraining seed of a checkpoint whose sidecar does not record it.
    norm_mean, norm_std : float, optional
        Log-mel normalisation stats (both or neither); default: sidecar, else published v1.
    weights_dir : str or Path, optional
        Where shipped checkpoints are looked up (default :data:`WEIGHTS_DIR`).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ParameterError
        A ``pretrain_domain`` or ``seed`` that contradicts what the model records: a sidecar's
        ``domain``/``seed``, a known official checkpoint's domain, or, for random weights,
        domain ``none`` and seed ``random_state``.
    """
    if not isinstance(spec, str) or not spec:
        raise ParameterError(f"spec must be a non-empty string, got {spec!r}")
    if not isinstance(random_state, int):
        raise ParameterError(f"random_state must be an integer, got {random_state!r}")
    if pretrain_domain is not None and pretrain_domain not in PRETRAIN_DOMAINS:
        raise ParameterError(f"pretrain_domain must be one of {list(PRETRAIN_DOMAINS)}, got {pretrain_domain!r}")

    shipped = SHIPPED_SPEC.match(spec)
    if shipped:
        root = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        checkpoint = root / shipped["domain"] / f"seed{shipped['seed']}.pt"
        if not checkpoint.is_file() or not checkpoint.with_suffix(".json").is_file():
            raise ParameterError(f"no shipped model {spec!r} (looked for {str(checkpoint)!r} and its .json); "
                                 f"shipped models: {shipped_models(weights_dir=root)}")
        sidecar = _read_sidecar(checkpoint)
        arch = sidecar.get("arch", "byola-v1")
        loaded, recorded = _load_byola(arch, checkpoint, spec=spec, random_state=random_state, sidecar=sidecar,
                                       norm=_norm(sidecar, norm_mean, norm_std),
                                       default_name=f"{shipped['domain']}-seed{shipped['seed']}")
    elif spec.startswith(("byola-v1:", "byola-v2:")):
        arch, target = spec.split(":", 1)
        if target == "random":
            loaded, recorded = _load_byola(arch, None, spec=spec, random_state=random_state, sidecar={},
                                           norm=_norm({}, norm_mean, norm_std),
                                           default_name=f"{arch}-random-seed{random_state}")
        else:
            checkpoint = Path(target)
            sidecar = _read_sidecar(checkpoint)
            if sidecar.get("arch", arch) != arch:
                raise ParameterError(f"spec {spec!r} says {arch} but the sidecar of {target!r} says "
                                     f"{sidecar['arch']!r}")
            loaded, recorded = _load_byola(arch, checkpoint, spec=spec, random_state=random_state, sidecar=sidecar,
                                           norm=_norm(sidecar, norm_mean, norm_std),
                                           default_name=f"{arch}-{checkpoint.stem}")
    elif spec.startswith("module:"):
        loaded, recorded = _load_module(spec, random_state=random_state, norm=(norm_mean, norm_std))
    else:
        raise ParameterError(f"model spec {spec!r} not understood; expected byola-v1:PATH, byola-v2:PATH, "
                             f"byola-v1:random, byola-v2:random, module:pkg.mod:factory[:CKPT] or a shipped name "
                             f"{shipped_models(weights_dir=weights_dir)}")
    if name is not None:
        if not name or "/" in name or name.startswith("."):
            raise ParameterError(f"name must be a folder name (no '/', not starting with '.'), got {name!r}")
        loaded.name = name
    for field, given, flag in (("pretrain_domain", pretrain_domain, "--domain"), ("seed", seed, "--seed")):
        if given is None:
            continue
        if field in recorded and getattr(loaded, field) != given:
            raise ParameterError(f"{field}={given!r} ({flag}) contradicts the {recorded[field]}, which records "
                                 f"{field}={getattr(loaded, field)!r} for model {spec!r}; leave it out (it only fills "
                                 "in what the model does not record) or use another checkpoint")
        setattr(loaded, field, given if field == "pretrain_domain" else int(given))
    return loaded


def _recorded(checkpoint: Path | None, sidecar: dict, sha: str | None) -> dict[str, str]:
    """Which of ``pretrain_domain`` / ``seed`` a checkpoint records, and where (for error messages)."""
    if checkpoint is None:
        return {}
    where = f"sidecar {str(checkpoint.with_suffix('.json'))!r}"
    recorded = {field: where for field, key in (("pretrain_domain", "domain"), ("seed", "seed")) if key in sidecar}
    if "pretrain_domain" not in recorded and sha in KNOWN_CHECKPOINTS:
        recorded["pretrain_domain"] = f"known checkpoint table ({KNOWN_CHECKPOINTS[sha][1]})"
    return recorded


def _load_byola(arch: str, checkpoint: Path | None, *, spec: str, random_state: int, sidecar: dict,
                norm: tuple[float, float, str], default_name: str) -> tuple[LoadedModel, dict[str, str]]:
    if arch not in ("byola-v1", "byola-v2"):
        raise ParameterError(f"arch must be 'byola-v1' or 'byola-v2', got {arch!r}")
    version = arch.split("-")[1]
    if checkpoint is None:
        encoder = _seeded(lambda: _byola_encoder(version, None), random_state)
        sha, domain, seed, control = None, "none", random_state, "random-weights"
    else:
        state = load_state_dict(checkpoint)
        encoder = _byola_encoder(version, state)
        _load_strict(encoder, state, checkpoint)
        sha = sha256_file(checkpoint)
        domain = sidecar.get("domain", KNOWN_CHECKPOINTS.get(sha, ("none",))[0])
        seed, control = sidecar.get("seed"), None
        if "d" in sidecar and int(sidecar["d"]) != encoder.d:
            raise AudioprobeError(f"sidecar of {str(checkpoint)!r} says d={sidecar['d']} but the weights have "
                                  f"d={encoder.d}")
    pipeline = Pipeline(encoder, norm_mean=norm[0], norm_std=norm[1]).eval()
    loaded = LoadedModel(pipeline=pipeline, name=default_name, spec=spec, arch=arch, d=encoder.d,
                         pretrain_domain=domain if domain in PRETRAIN_DOMAINS else "none",
                         seed=None if seed is None else int(seed), control=control, checkpoint_sha256=sha,
                         norm_mean=norm[0], norm_std=norm[1], norm_source=norm[2])
    if checkpoint is None:  # the random-weight control: domain none, seeded with random_state
        return loaded, {"pretrain_domain": "random-weight control (domain 'none')",
                        "seed": "random-weight control (its seed is random_state)"}
    return loaded, _recorded(checkpoint, sidecar, sha)


def _load_module(spec: str, *, random_state: int,
                 norm: tuple[float | None, float | None]) -> tuple[LoadedModel, dict[str, str]]:
    parts = spec.split(":", 3)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise ParameterError(f"a module spec is module:pkg.mod:factory[:CKPT], got {spec!r}")
    module_name, factory_name = parts[1], parts[2]
    checkpoint = Path(parts[3]) if len(parts) == 4 and parts[3] else None
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"spec {spec!r}: cannot import {module_name}.{factory_name} ({exc})") from exc
    encoder = _seeded(factory, random_state)
    if not isinstance(encoder, nn.Module):
        raise ParameterError(f"spec {spec!r}: {module_name}.{factory_name}() must return a torch.nn.Module, "
                             f"got {type(encoder).__name__}")
    input_kind = getattr(encoder, "input_kind", "logmel")
    if input_kind not in INPUT_KINDS:
        raise ParameterError(f"{module_name}.{factory_name}().input_kind must be one of {list(INPUT_KINDS)}, "
                             f"got {input_kind!r}")
    sha, sidecar = None, {}
    if checkpoint is not None:
        _load_strict(encoder, load_state_dict(checkpoint), checkpoint)
        sha, sidecar = sha256_file(checkpoint), _read_sidecar(checkpoint)
    mean, std, source = _norm(sidecar, *norm)
    pipeline = Pipeline(encoder, norm_mean=mean, norm_std=std, input_kind=input_kind).eval()
    d = getattr(encoder, "d", None)
    domain = sidecar.get("domain", KNOWN_CHECKPOINTS.get(sha, ("none",))[0])
    seed = sidecar.get("seed") if checkpoint is not None else random_state
    name = factory_name if checkpoint is None else f"{factory_name}-{checkpoint.stem}"
    loaded = LoadedModel(pipeline=pipeline, name=name,
                         spec=spec, arch=f"module:{module_name}:{factory_name}", d=d if isinstance(d, int) else None,
                         pretrain_domain=domain if domain in PRETRAIN_DOMAINS else "none",
                         seed=None if seed is None else int(seed), control=None, checkpoint_sha256=sha,
                         norm_mean=mean, norm_std=std, norm_source=source)
    return loaded, _recorded(checkpoint, sidecar, sha)
