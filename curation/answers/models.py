"""Which model answers: MODEL as the user names it, resolved to weights (+ adapter) or an endpoint.

- ``smollm2-135m``: the bundled offline SmolLM2-135M-Instruct GGUF, de-quantised once into a cached folder
  (a GGUF-loaded model is slow to load and marked quantized; the folder reloads in well under a second);
- an adapter folder written by ``python -m training sft`` (``adapter_config.json`` names the base), or the
  run folder holding it (``adapter/``) or full weights (``model/``);
- any Hugging Face causal LM name or folder (offline: it must be in the local cache);
- a model of the registry (``store.models``, written by ``python -m training sft``), by name or ``#ID``:
  its base weights plus its adapter (or its full fine-tuned weights);
- with a base URL: the model name an OpenAI-compatible endpoint serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.base_models import convert_bundled
from curation.config import Settings
from curation.store import Store

SMOLLM2 = "smollm2-135m"
ADAPTER_CONFIG = "adapter_config.json"


class ModelError(ValueError):
    """MODEL names nothing that can answer; the message says what was looked for."""


@dataclass(frozen=True)
class ModelSpec:
    model_id: str  # the name answers are stored under
    kind: str  # local | endpoint
    weights: str  # local: SMOLLM2, an HF name or a folder; endpoint: the served model name
    adapter: str = ""  # a PEFT adapter folder applied on the weights
    base_url: str = ""

    @property
    def local(self) -> bool:
        return self.kind == "local"


def resolve_model(name: str, settings: Settings, base_url: str | None = None, store: Store | None = None) -> ModelSpec:
    name = name.strip()
    if not name:
        raise ModelError("no model given; name one (smollm2-135m, an adapter folder, an HF model or a served name)")
    if base_url:
        return ModelSpec(name, "endpoint", name, base_url=base_url.rstrip("/"))
    if name.lower() in (SMOLLM2, "smollm2-135m-instruct"):
        return ModelSpec(SMOLLM2, "local", SMOLLM2)
    registered = _registry_spec(name, store) if store is not None else None
    if registered is not None:
        return registered
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_spec(path.resolve())
    if path.suffix == ".json" or name.startswith((".", "/")):
        raise ModelError(f"model folder {name} does not exist")
    return ModelSpec(name, "local", name)


def _registry_spec(name: str, store: Store) -> ModelSpec | None:
    """A trained model by ``#ID`` or by name (the newest finished one of that name); stored as ``name #ID``."""
    models = store.models.all()
    wanted = name[1:] if name.startswith("#") else None
    found = [m for m in models if (str(m.id) == wanted if wanted else m.name == name or f"{m.name} #{m.id}" == name)]
    if not found:
        if wanted:
            raise ModelError(f"no trained model #{wanted} in the registry (see the Train page or `python -m training`)")
        return None
    done = [m for m in found if m.status == "done" and m.adapter_path]
    if not done:
        raise ModelError(f"trained model '{name}' has no finished weights yet (status {found[-1].status})")
    info = done[-1]
    model_id = f"{info.name} #{info.id}"
    if info.is_adapter:
        return ModelSpec(model_id, "local", _base_weights(info.base_model_path or info.base_model, Path(info.adapter_path)),
                         adapter=info.adapter_path)
    return ModelSpec(model_id, "local", info.adapter_path)


def _folder_spec(folder: Path) -> ModelSpec:
    for adapter in (folder, folder / "adapter"):
        if (adapter / ADAPTER_CONFIG).is_file():
            base = _adapter_base(adapter)
            base_spec = _base_weights(base, adapter)
            return ModelSpec(str(folder), "local", base_spec, adapter=str(adapter))
    if (folder / "config.json").is_file():
        return ModelSpec(str(folder), "local", str(folder))
    if (folder / "model" / "config.json").is_file():
        return ModelSpec(str(folder), "local", str(folder / "model"))
    raise ModelError(f"{folder} holds neither {ADAPTER_CONFIG} (a PEFT adapter) nor config.json (model weights)")


def _adapter_base(adapter: Path) -> str:
    try:
        config = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{adapter / ADAPTER_CONFIG}: not readable JSON ({err}); re-save the adapter") from err
    base = str(config.get("base_model_name_or_path") or "")
    if not base:
        raise ModelError(f"{adapter / ADAPTER_CONFIG} names no base_model_name_or_path; add the base model's name")
    return base


def _base_weights(base: str, adapter: Path) -> str:
    if base.lower() in (SMOLLM2, "smollm2-135m-instruct", ""):
        return SMOLLM2
    candidate = Path(base).expanduser()
    if not candidate.is_absolute() and (adapter / candidate).is_dir():
        candidate = adapter / candidate
    return str(candidate.resolve()) if candidate.is_dir() else base


# ----------------------------------------------------------------------------------------------------
# The bundled SmolLM2 GGUF, de-quantised once


def model_cache_dir(settings: Settings) -> Path:
    configured = settings.generate.model_cache_dir
    return Path(configured).expanduser() if configured else settings.cache_dir


def smollm2_folder(settings: Settings) -> Path:
    """A transformers folder made from the GGUF the first time it is needed (:mod:`curation.base_models`),
    the same folder ``python -m training sft`` starts from, so answers and fine-tuning share the weights."""
    try:
        return convert_bundled(model_cache_dir(settings))
    except FileNotFoundError as err:
        raise ModelError(str(err)) from err
