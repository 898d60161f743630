"""Supervised fine-tuning on a selection: ``python -m training sft --data FILE --out DIR``.

TRL's SFTTrainer with a PEFT LoRA adapter (``--full`` for full fine-tuning), the Alpaca template of
METHODS.md §1 with the loss on the response only, the papers' presets (``training.sft.presets``) and a
``local`` one for this machine. Run it under ``accelerate launch --config_file training/accelerate/…``
for several GPUs or nodes (DDP, DeepSpeed ZeRO-2/3, FSDP) or several CPU processes.

Modules: ``presets`` (the settings), ``base_model`` (the bundled SmolLM2 or any HF model), ``data``
(reading, template, tokens, loss-mask check), ``device`` (CUDA or CPU, bf16, threads), ``callbacks``
(metrics.jsonl, cancel through a file), ``run`` (the run), ``cli`` (arguments), ``job`` (the studio's
background job), ``export`` (adapter or merged weights).
"""

from training.sft.cli import add_arguments, main

__all__ = ["add_arguments", "main"]
