"""An on-disk store of vectors keyed by 16-byte digests: append-only shards, safe for concurrent writers.

Each shard is one file holding two .npy arrays back to back: the keys, then the vectors. A writer puts
its shard under a temporary name and renames it into place, so a reader sees a shard whole or not at
all and two processes never write the same file. Reading loads only the keys and memory-maps the
vectors, so reopening tens of thousands of vectors costs milliseconds. When shards pile up they are
merged (under a lock, by one process at a time); a reader that loses a shard to a merge re-reads the
folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUFFIX = ".vec"
MAX_SHARDS = 12


def digest(namespace: str, text: str) -> bytes:
    """A 16-byte key; the namespace keeps text keys and record keys apart."""
    payload = f"{namespace}\0{text}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(payload, digest_size=16).digest()


@dataclass
class _Shard:
    path: Path
    keys: np.ndarray
    vectors: np.ndarray


class VectorCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """For each key (dtype S16): whether it is cached, and the vectors (zeros where it is not)."""
        for attempt in range(3):
            try:
                return self._lookup(keys)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                time.sleep(0.05)  # a merge replaced shards between listing and opening; list again
        raise AssertionError("unreachable")

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        """Write one new shard (temporary file, then an atomic rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        return _write_shard(self.directory, name, np.asarray(keys, "S16"), np.asarray(vectors, np.float32))

    def shards(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))

    def compact_if_fragmented(self, max_shards: int = MAX_SHARDS) -> bool:
        """Merge all shards into one when there are too many; skipped if another process is merging."""
        if len(self.shards()) <= max_shards:
            return False
        return self.compact()

    def compact(self) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".compact.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            shards = [_open_shard(p) for p in self.shards()]
            if len(shards) <= 1:
                return False
            keys = np.concatenate([s.keys for s in shards])
            unique, first = np.unique(keys, return_index=True)
            vectors = np.concatenate([np.asarray(s.vectors) for s in shards])[first]
            # The merged shard sorts after the ones it replaces only by name; readers take any copy of a key.
            _write_shard(
                self.directory, f"{time.time_ns():020d}-merged-{uuid.uuid4().hex[:8]}{SUFFIX}", unique, vectors
            )
            for shard in shards:
                shard.path.unlink(missing_ok=True)
            return True

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        keys = np.asarray(keys, "S16")
        found = np.zeros(len(keys), bool)
        shards = [_open_shard(p) for p in self.shards()]
        if not shards or not len(keys):
            return found, None
        vectors = np.zeros((len(keys), shards[0].vectors.shape[1]), np.float32)
        for shard in shards:
            todo = np.flatnonzero(~found)
            if not len(todo):
                break
            rows, hit = _positions(shard.keys, keys[todo])
            if hit.any():
                order = np.argsort(rows[hit])  # read the memory map in file order
                targets = todo[hit][order]
                vectors[targets] = shard.vectors[rows[hit][order]]
                found[targets] = True
        return found, vectors


def _positions(shard_keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each wanted key in the shard, and whether it is there at all."""
    order = np.argsort(shard_keys)
    sorted_keys = shard_keys[order]
    at = np.searchsorted(sorted_keys, wanted)
    at = np.minimum(at, len(sorted_keys) - 1)
    hit = sorted_keys[at] == wanted
    return order[at], hit


def _write_shard(directory: Path, name: str, keys: np.ndarray, vectors: np.ndarray) -> Path:
    temporary = directory / f".{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as handle:
        np.save(handle, keys)
        np.save(handle, vectors)
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / name
    os.replace(temporary, final)
    return final


def _open_shard(path: Path) -> _Shard:
    with open(path, "rb") as handle:
        keys = np.load(handle)
        version = np.lib.format.read_magic(handle)
        shape, fortran, dtype = _read_header(handle, version)
        offset = handle.tell()
    if fortran or len(shape) != 2:
        raise ValueError(f"{path} is not a vector shard; delete it so it is rebuilt")
    if shape[0] == 0:
        return _Shard(path, keys, np.zeros(shape, dtype))
    return _Shard(path, keys, np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset))


def _read_header(handle, version):  # type: ignore[no-untyped-def]
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)
