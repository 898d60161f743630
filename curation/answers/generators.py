"""Turning prompts into answers: batched local generation with transformers, or an OpenAI-compatible endpoint.

Both take the items still to answer and call ``on_batch`` with each finished group of answers, so the
caller stores them at once (a cancel or crash loses at most the batch in flight).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from curation.answers.decoding import Decoding, sha256, user_text
from curation.answers.items import AnswerItem
from curation.answers.models import SMOLLM2, ModelError, ModelSpec, smollm2_folder
from curation.config import Settings, secret
from curation.llm import EndpointOptions, LLMClient
from curation.store import Store


@dataclass(frozen=True)
class Generated:
    item: AnswerItem
    output: str
    finish_reason: str  # stop | truncated | unknown
    prompt_sha256: str
    temperature: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


BatchFn = Callable[[list[Generated]], None]
LogFn = Callable[[str, str], None]


# ----------------------------------------------------------------------------------------------------
# Local: transformers


class LocalGenerator:
    """A causal LM on this machine: left-padded, length-sorted batches with the KV cache, greedy by default."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, batch_size)
        self.eos_ids = _eos_ids(model, tokenizer)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation appends on the right: prompts must end aligned

    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings) -> LocalGenerator:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = settings.generate
        weights = str(smollm2_folder(settings)) if spec.weights == SMOLLM2 else spec.weights
        dtype = getattr(torch, config.dtype)
        tokenizer_source = spec.adapter if spec.adapter and _has_tokenizer(spec.adapter) else weights
        try:
            model = AutoModelForCausalLM.from_pretrained(weights, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
        except OSError as err:
            raise ModelError(
                f"cannot load model '{weights}': it is not a model folder here nor in the local Hugging Face cache "
                "(nothing is downloaded offline); give a model or adapter folder, an HF name in the cache, "
                f"or {SMOLLM2}"
            ) from err
        if spec.adapter:
            from peft import PeftModel

            # Merged once: an unmerged LoRA adds two small matmuls to every layer of every step.
            model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
        model.to(config.device).eval()
        return cls(model, tokenizer, config.batch_size)

    def prompt_for(self, item: AnswerItem, decoding: Decoding) -> str:
        text = user_text(item.instruction, item.input, decoding.prompt_format)
        if decoding.prompt_format == "chat":
            if not getattr(self.tokenizer, "chat_template", None):
                raise ValueError("this model has no chat template; use the alpaca prompt format")
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        return text

    def run(self, items: Sequence[AnswerItem], decoding: Decoding, on_batch: BatchFn) -> None:
        prompts = [self.prompt_for(item, decoding) for item in items]
        special = decoding.prompt_format != "chat"  # a chat template writes its own special tokens
        ids = self.tokenizer(prompts, add_special_tokens=special)["input_ids"]
        temperatures = [decoding.temperature_for(item.category) for item in items]
        for batch in length_sorted_batches(ids, temperatures, self.batch_size):
            started = time.monotonic()
            rows = self._generate([ids[i] for i in batch], temperatures[batch[0]], decoding)
            seconds = (time.monotonic() - started) / len(batch)
            on_batch([
                Generated(items[i], text, reason, sha256(prompts[i]), temperatures[i], len(ids[i]), tokens, seconds)
                for i, (text, reason, tokens) in zip(batch, rows)
            ])

    def _generate(self, batch_ids: list[list[int]], temperature: float, decoding: Decoding) -> list[tuple[str, str, int]]:
        import torch

        encoded = self.tokenizer.pad({"input_ids": batch_ids}, return_tensors="pt").to(self.model.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(decoding.seed)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": decoding.top_p}
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=decoding.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self.eos_ids),
                use_cache=True,
                **sampling,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        return [self._finish(row) for row in new_tokens]

    def _finish(self, row: list[int]) -> tuple[str, str, int]:
        """(text, finish reason, tokens generated): cut at the first end-of-text; none means truncated."""
        end = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
        kept = row if end is None else row[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return text, "truncated" if end is None else "stop", len(kept)


def length_sorted_batches(ids: Sequence[Sequence[int]], temperatures: Sequence[float], size: int) -> list[list[int]]:
    """Indices in batches of one temperature each, longest prompts first, so padding stays small."""
    order = sorted(range(len(ids)), key=lambda i: (temperatures[i], -len(ids[i]), i))
    batches: list[list[int]] = []
    for index in order:
        if batches and len(batches[-1]) < size and temperatures[batches[-1][0]] == temperatures[index]:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _has_tokenizer(folder: str) -> bool:
    from pathlib import Path

    return (Path(folder) / "tokenizer_config.json").is_file()


# ----------------------------------------------------------------------------------------------------
# Endpoint: the shared OpenAI-compatible client


class EndpointGenerator:
    """Answers through :class:`curation.llm.LLMClient`: concurrent, retried, every call kept in the store."""

    def __init__(self, spec: ModelSpec, settings: Settings, store: Store, job_id: int | None = None,
                 log: LogFn | None = None) -> None:
        config = settings.generate
        options = EndpointOptions.from_config(settings.llm, model=spec.weights, base_url=spec.base_url,
                                              concurrency=config.concurrency)
        # The key is read here, in the process that calls; it is never stored, logged or put in job parameters.
        self.client = LLMClient(options, store, api_key=secret(settings.llm.api_key_name), job_id=job_id, log=log)
        self.chunk = max(1, config.concurrency) * 4  # stored and checked for cancel between chunks
        self.failed: list[tuple[AnswerItem, str]] = []

    def request_for(self, item: AnswerItem, decoding: Decoding) -> tuple[dict[str, Any], str]:
        text = user_text(item.instruction, item.input, decoding.prompt_format)
        params = {"temperature": decoding.temperature_for(item.category), "top_p": decoding.top_p,
                  "max_tokens": decoding.max_new_tokens}
        model = self.client.options.model
        if decoding.api == "completions":
            # The completions endpoint gets the prompt itself; the server's chat template is not involved.
            return {"model": model, "prompt": text, **params}, text
        return {"model": model, "messages": [{"role": "user", "content": text}], **params}, text

    def run(self, items: Sequence[AnswerItem], decoding: Decoding, on_batch: BatchFn) -> None:
        for start in range(0, len(items), self.chunk):
            chunk = list(items[start : start + self.chunk])
            built = [self.request_for(item, decoding) for item in chunk]
            results = self.client.complete([request for request, _ in built])
            answered = []
            for item, (request, prompt), result in zip(chunk, built, results):
                if result.status != "ok" or result.text is None:
                    self.failed.append((item, result.error or "no answer"))
                    continue
                answered.append(Generated(
                    item, result.text.strip(), _endpoint_finish(result.completion_tokens, decoding.max_new_tokens),
                    sha256(prompt), request["temperature"], result.prompt_tokens, result.completion_tokens,
                    result.latency_s,
                ))
            on_batch(answered)


def _endpoint_finish(completion_tokens: int, max_tokens: int) -> str:
    # The shared client does not pass the server's finish_reason on; the token count tells the same story.
    if completion_tokens <= 0:
        return "unknown"
    return "truncated" if completion_tokens >= max_tokens else "stop"
