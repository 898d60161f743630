"""Export a registry model for other tools: its adapter as is, or merged into the base weights.

``python -m training export --model ID --out DIR [--merged]``. A merged export is a plain
``AutoModelForCausalLM`` folder (vLLM, llama.cpp's converter, ``transformers serve`` read it); an adapter
export is the PEFT folder plus an ``export.json`` naming the base model to load it on.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any


def export_model(info: Any, out: str | Path, merged: bool) -> Path:
    """Write the model ``info`` (a ``store.models`` row) to ``out``; returns the folder."""
    if info.status != "done" or not info.adapter_path:
        raise ValueError(f"model {info.id} is {info.status}; only a finished run can be exported")
    source = Path(info.adapter_path)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: the model's weights are gone; it cannot be exported")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder")
    if merged and info.is_adapter:
        _merge(info.base_model_path, source, out)
    else:
        shutil.copytree(source, out, dirs_exist_ok=True)
    note = {"model_id": info.id, "name": info.name, "base_model": info.base_model, "base_model_path": info.base_model_path,
            "kind": "merged" if merged or not info.is_adapter else "lora adapter", "data_hash": info.data_hash,
            "preset": info.preset, "overrides": info.overrides}
    (out / "export.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return out


def _merge(base_path: str, adapter: Path, out: Path) -> None:
    from peft import PeftModel

    from training.sft.base_model import load_model, load_tokenizer

    model = PeftModel.from_pretrained(load_model(base_path), str(adapter)).merge_and_unload()
    model.save_pretrained(out)
    load_tokenizer(str(adapter)).save_pretrained(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=int, required=True, help="the registry id (python -m training sft prints it)")
    parser.add_argument("--out", required=True, help="a new folder")
    parser.add_argument("--merged", action="store_true", help="merge the LoRA adapter into the base weights")


def main(args: argparse.Namespace) -> int:
    from curation.config import load_settings
    from curation.store import Store

    store = Store.open(load_settings())
    try:
        folder = export_model(store.models.get(args.model), args.out, args.merged)
    except (LookupError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}")
        return 2
    finally:
        store.close()
    print(folder)
    return 0


def export_for(store: Any, settings: Any, person: Any, model_id: int, merged: bool) -> Path:
    """The studio's export: into ``<workspace>/exports/model-ID-adapter|merged``; merging runs in a child
    process (it loads torch, which the studio process does not)."""
    import os
    import subprocess
    import sys

    from curation.config import REPO_DIR
    from curation.studio_auth import require

    require(person, "export", "export a trained model")
    info = store.models.get(model_id)
    out = (Path(settings.workspace) / "exports" / f"model-{model_id}-{'merged' if merged else 'adapter'}").resolve()
    if out.exists() and (out / "export.json").exists():
        return out  # exported before: the same run gives the same files
    if not merged:
        return export_model(info, out, merged=False)
    env = {**os.environ, "DATABASE_URL": store.url, "CURATION_WORKSPACE": str(Path(settings.workspace).resolve())}
    done = subprocess.run([sys.executable, "-m", "training", "export", "--model", str(model_id), "--out", str(out),
                           "--merged"], env=env, cwd=REPO_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError((done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip()
                           else f"export exited with code {done.returncode}")
    return out
