"""The Alpaca prompt template (METHODS.md §1): one function used by training and by answer generation.

Training formats every example with :func:`render_prompt` and puts the loss on what follows it;
generation renders the same prompt and stores :func:`prompt_sha256` with each answer, so an answer can be
traced to the exact text the model saw.
"""

from __future__ import annotations

import hashlib

PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def render_prompt(instruction: str, input: str = "") -> str:
    """The prompt the model sees; the response (and, in training, the end-of-text token) follows it."""
    if input and input.strip():
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)


def prompt_sha256(instruction: str, input: str = "") -> str:
    return hashlib.sha256(render_prompt(instruction, input).encode("utf-8")).hexdigest()
