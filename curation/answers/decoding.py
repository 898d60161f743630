"""How answers are decoded and prompted: one object, hashed into the key answers are stored under."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from curation.alpaca import render_prompt
from curation.config import GenerateConfig
from curation.records import prompt_text

PROMPT_FORMATS = ("alpaca", "chat")
APIS = ("chat", "completions")


@dataclass(frozen=True)
class Decoding:
    prompt_format: str = "alpaca"
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 42
    per_category_temperature: bool = False
    category_temperatures: dict[str, float] = field(default_factory=dict, hash=False)
    # Local models: the weights' dtype (it changes greedy answers a little). Endpoints: the API used.
    dtype: str = ""
    api: str = ""

    def __post_init__(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt format must be one of {', '.join(PROMPT_FORMATS)}, got {self.prompt_format!r}")
        if self.api and self.api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, got {self.api!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max new tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"temperature must be ≥ 0 and top-p in (0, 1], got {self.temperature} and {self.top_p}")

    @classmethod
    def from_config(cls, config: GenerateConfig, local: bool, **overrides: Any) -> Decoding:
        values = {
            "prompt_format": config.prompt_format,
            "max_new_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "seed": config.seed,
            "per_category_temperature": config.per_category_temperature,
            "dtype": config.dtype if local else "",
            "api": "" if local else config.api,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and k in values})
        if values["per_category_temperature"]:
            values["category_temperatures"] = {k.lower(): float(v) for k, v in config.category_temperatures.items()}
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        """16 hex of the canonical JSON: the same settings always give the same key."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def temperature_for(self, category: str | None) -> float:
        """MT-Bench's per-category temperature when that is on; otherwise the one temperature."""
        if self.per_category_temperature and category:
            return self.category_temperatures.get(category.lower(), self.temperature)
        return self.temperature


def user_text(instruction: str, input: str, prompt_format: str) -> str:
    """What the model is given: the Alpaca prompt, or (chat) the question its own template wraps."""
    if prompt_format == "alpaca":
        return render_prompt(instruction, input)
    return prompt_text(instruction, input)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
