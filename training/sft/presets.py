"""Training presets: the papers' settings (METHODS.md §1) and one that fits this machine.

A preset fixes what the papers fix — epochs, learning rate, global batch (reached through gradient
accumulation), max length, warmup ratio, cosine schedule, weight decay — plus how the work is split on a
device (``per_device_batch``) and the adapter (LoRA or full). Overrides replace single fields and are
recorded with the run, so the registry says exactly what differed from the preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

LOCAL_BASE_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    base_model: str
    epochs: float
    learning_rate: float
    global_batch: int
    per_device_batch: int
    max_length: int = 512
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    bf16: bool = True  # used only where the device supports it (see training.sft.device)
    # LoRA only: keep the frozen base weights in bf16 too (the adapter stays fp32), where bf16 is used.
    bf16_base_weights: bool = False
    group_by_length: bool = True
    pad_to_max_length: bool = False  # every batch padded to max_length: the naive baseline of the benchmark
    eval_fraction: float = 0.05
    eval_max: int = 200
    seed: int = 42

    def with_overrides(self, overrides: dict[str, Any]) -> Preset:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)} - {"name", "description"})
        if unknown:
            raise ValueError(f"unknown preset field(s) {', '.join(unknown)}; known: {', '.join(OVERRIDABLE)}")
        typed = {key: _typed(getattr(self, key), value) for key, value in overrides.items()}
        return dataclasses.replace(self, **typed)

    def gradient_accumulation(self, world_size: int) -> int:
        """Steps to accumulate so that per-device batch x devices x steps is the preset's global batch."""
        per_step = self.per_device_batch * world_size
        if self.global_batch % per_step:
            raise ValueError(
                f"global batch {self.global_batch} is not a multiple of per-device batch {self.per_device_batch} "
                f"x {world_size} process(es); change --global-batch or --per-device-batch"
            )
        return self.global_batch // per_step


def _typed(current: Any, value: Any) -> Any:
    """Overrides arrive as text from the CLI or JSON from the store; give them the preset field's type."""
    if isinstance(current, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return str(value)


# Papers (AlpaGasus Tables 5-6; Alpaca's settings). Per-device batch 4 is Alpaca's; the rest accumulates.
PRESETS: dict[str, Preset] = {
    "local": Preset(
        "local",
        "this machine: SmolLM2-135M-Instruct, LoRA, bf16 where the CPU has it, length-grouped batches",
        base_model=LOCAL_BASE_MODEL,
        epochs=1,
        learning_rate=2e-4,
        global_batch=16,
        # 2 x 8 accumulation, frozen base in bf16: a 4 x 512 micro-batch in fp32 peaked above 7 GB here.
        per_device_batch=2,
        bf16_base_weights=True,
    ),
    "alpagasus-7b": Preset(
        "alpagasus-7b", "AlpaGasus 7B (Table 5): 3 epochs, LR 2e-5, global batch 128, max length 512",
        base_model="meta-llama/Llama-2-7b-hf", epochs=3, learning_rate=2e-5, global_batch=128, per_device_batch=4,
        lora=False,
    ),
    "alpagasus-13b": Preset(
        "alpagasus-13b", "AlpaGasus 13B (Table 5): 5 epochs, LR 1e-5, global batch 128, max length 512",
        base_model="meta-llama/Llama-2-13b-hf", epochs=5, learning_rate=1e-5, global_batch=128, per_device_batch=4,
        lora=False,
    ),
    "dolly-7b": Preset(
        "dolly-7b", "Dolly 7B (Table 6): 3 epochs, LR 2e-5, global batch 128, max length 512",
        base_model="meta-llama/Llama-2-7b-hf", epochs=3, learning_rate=2e-5, global_batch=128, per_device_batch=4,
        lora=False,
    ),
    "dolly-13b": Preset(
        "dolly-13b", "Dolly 13B (Table 6): 5 epochs, LR 1e-5, global batch 128, max length 512",
        base_model="meta-llama/Llama-2-13b-hf", epochs=5, learning_rate=1e-5, global_batch=128, per_device_batch=4,
        lora=False,
    ),
}
OVERRIDABLE = tuple(f.name for f in dataclasses.fields(Preset) if f.name not in ("name", "description"))


def get_preset(name: str, overrides: dict[str, Any] | None = None) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].with_overrides(overrides or {})
