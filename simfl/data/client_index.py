"""Which feature-store rows each client owns, as memory-mapped arrays on disk.

A Ray actor opens this once and slices its client's rows; nothing per client travels in
Flower messages and no client ever loads another's indices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simfl.atomic import publish_directory
from simfl.seeding import rng_for


@dataclass(frozen=True)
class ClientSplit:
    train_rows: np.ndarray
    train_labels: np.ndarray
    test_rows: np.ndarray
    test_labels: np.ndarray


class ClientIndex:
    """CSR layout: client c owns ``rows[offsets[c]:offsets[c+1]]``, its local test part last."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        load = lambda name: np.load(self.directory / f"{name}.npy", mmap_mode="r")  # noqa: E731
        self.offsets, self.test_start = load("offsets"), load("test_start")
        self.rows, self.labels = load("rows"), load("labels")

    @property
    def num_clients(self) -> int:
        return len(self.offsets) - 1

    def client(self, cid: int) -> ClientSplit:
        begin, middle, end = (
            int(self.offsets[cid]),
            int(self.test_start[cid]),
            int(self.offsets[cid + 1]),
        )
        return ClientSplit(
            np.asarray(self.rows[begin:middle]),
            np.asarray(self.labels[begin:middle]),
            np.asarray(self.rows[middle:end]),
            np.asarray(self.labels[middle:end]),
        )

    @classmethod
    def build(
        cls,
        directory: Path,
        parts: list[np.ndarray],
        store_rows: np.ndarray,
        labels: np.ndarray,
        local_test_fraction: float,
        seed: int,
    ) -> ClientIndex:
        """Write the index atomically; ``parts`` index into ``store_rows``/``labels``."""
        directory = Path(directory)
        if (directory / "meta.json").exists():
            return cls(directory)
        offsets, test_start, ordered = [0], [], []
        for cid, part in enumerate(parts):
            shuffled = rng_for(seed, "local-test-split", cid).permutation(part)
            num_test = int(round(len(part) * local_test_fraction))
            if local_test_fraction > 0 and len(part) >= 2:
                num_test = min(max(num_test, 1), len(part) - 1)
            train, test = (
                np.sort(shuffled[: len(part) - num_test]),
                np.sort(shuffled[len(part) - num_test :]),
            )
            ordered.extend([train, test])
            test_start.append(offsets[-1] + len(train))
            offsets.append(offsets[-1] + len(part))
        order = np.concatenate(ordered) if ordered else np.empty(0, dtype=np.int64)
        arrays = {
            "offsets": np.asarray(offsets, dtype=np.int64),
            "test_start": np.asarray(test_start, dtype=np.int64),
            "rows": np.asarray(store_rows, dtype=np.int64)[order],
            "labels": np.asarray(labels, dtype=np.int64)[order],
        }
        _write_atomically(directory, arrays, {"num_clients": len(parts)})
        return cls(directory)


def _write_atomically(directory: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Publish the arrays and ``meta.json`` as one directory (a racing builder's copy is equal)."""

    def fill(staging: Path) -> None:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", array)
        (staging / "meta.json").write_text(json.dumps(meta))

    publish_directory(directory, fill)
