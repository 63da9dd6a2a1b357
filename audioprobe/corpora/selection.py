"""Shared steps of the corpus recipes: deterministic source order, decoding, manifest rows."""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..audio import load_audio
from ..manifest import sha256_file
from .clips import leading_silence
from .sources import unit_hash

__all__ = ["round_robin", "Decoded", "decode_trimmed", "parallel_ordered", "manifest_row", "split_of"]

T = TypeVar("T")
R = TypeVar("R")

#: Share of groups assigned to the ``test`` split.
TEST_FRACTION = 0.2


def round_robin(items: Iterable[T], *, group: Callable[[T], str], key: Callable[[T], str],
                salt: str) -> list[T]:
    """Order items so that consecutive items come from different groups.

    Groups are visited in the order of ``unit_hash(salt + group)``; within a group items are
    taken in the order of ``unit_hash(salt + key(item))``; one item per group per round.
    The result depends only on the items' groups and keys, not on their input order.
    """
    by_group: dict[str, list[T]] = defaultdict(list)
    for item in items:
        by_group[group(item)].append(item)
    queues = [sorted(v, key=lambda it: (unit_hash(salt + key(it)), key(it)))
              for _, v in sorted(by_group.items(), key=lambda kv: (unit_hash(salt + kv[0]), kv[0]))]
    out: list[T] = []
    depth = 0
    while any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out


@dataclass
class Decoded:
    """A decoded source at the corpus rate: ``y`` (float32, shape (n,)) and ``start``, its first non-silent sample."""

    y: np.ndarray
    start: int


def decode_trimmed(path: str | Path, *, sr: int) -> Decoded:
    """Decode with :func:`audioprobe.audio.load_audio` at ``sr`` Hz and find the end of leading silence."""
    y = load_audio(path, sr=sr)
    return Decoded(y=y, start=leading_silence(y))


def parallel_ordered(func: Callable[[T], R], items: Iterable[T], *, n_jobs: int,
                     batch: int = 64) -> Iterator[tuple[T, R]]:
    """Yield ``(item, func(item))`` in input order, computing batches of items in threads.

    Stops computing when the consumer stops iterating (at most one batch ahead).
    """
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        for lo in range(0, len(items), batch):
            chunk = items[lo:lo + batch]
            yield from zip(chunk, pool.map(func, chunk))


def split_of(group: str) -> str:
    """``"test"`` for about :data:`TEST_FRACTION` of groups (by a stable hash of the group), else ``"train"``."""
    return "test" if unit_hash("split:" + group) < TEST_FRACTION else "train"


def manifest_row(*, clip_id: str, file: Path, root: Path, domain: str, dataset: str, group: str, split: str,
                 license: str, source: str, sample_rate: int, n_samples: int, **extra: object) -> dict:
    """One manifest row for a written clip file; ``path`` relative to ``root``, ``sha256`` of the file."""
    rel = Path(os.path.relpath(Path(file).resolve(), Path(root).resolve())).as_posix()
    row = {"clip_id": clip_id, "path": rel, "domain": domain, "dataset": dataset,
           "group": group, "split": split, "license": license, "source": source, "sample_rate": int(sample_rate),
           "duration_s": round(n_samples / sample_rate, 6), "sha256": sha256_file(file)}
    row.update(extra)
    return row
