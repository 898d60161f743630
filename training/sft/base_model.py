"""Which base model a run starts from, and loading it with its tokenizer.

``smollm2-135m`` (also the empty default) names the bundled SmolLM2-135M-Instruct, converted once into a
plain folder by :mod:`curation.base_models` (shared with answer generation). Any other value is a Hugging
Face name or a local folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curation.base_models import BUNDLED, bundled_gguf, clear_quantized_mark, convert_bundled

__all__ = ["BUNDLED", "bundled_gguf", "clear_quantized_mark", "convert_bundled", "load_model", "load_tokenizer",
           "resolve_base_model"]


def resolve_base_model(name: str, cache_dir: Path) -> str:
    """A path or Hugging Face name ``from_pretrained`` can load; converts the bundled GGUF on first use."""
    if name.strip().lower() in BUNDLED:
        return str(convert_bundled(cache_dir))
    return name


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.eos_token is None:
        raise ValueError(f"the tokenizer of {path} has no end-of-text token; the response could never end")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, dtype: Any = None) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype) if dtype is not None else AutoModelForCausalLM.from_pretrained(path)
    if getattr(model, "is_quantized", False) and getattr(model.config, "quantization_config", None) is None:
        clear_quantized_mark(model)
    return model
