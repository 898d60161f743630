"""Where a run computes: CUDA when present, else the CPU with bf16 autocast if its cores have bf16 units."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" or "cpu"
    bf16: bool
    threads: int
    world_size: int
    rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: autocast to bf16 is then about 1.4x faster here (ENVIRONMENT.md); else fp32."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def detect(want_bf16: bool) -> Device:
    import torch

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        return Device("cuda", want_bf16 and torch.cuda.is_bf16_supported(), 0, world_size, rank)
    # Processes on one machine share its cores: each gets its part, never more threads than cores.
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    threads = max(1, (os.cpu_count() or 1) // max(1, local))
    torch.set_num_threads(threads)
    return Device("cpu", want_bf16 and cpu_has_bf16(), threads, world_size, rank)
