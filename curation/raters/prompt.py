"""The AlpaGasus rating prompt p_G (Fig. 4 of the paper), with the rated dimension as a parameter.

The wording is the paper's, character for character: changing it changes what the ratings mean, and
its hash is part of every LLM rating's version so ratings from another wording are never mixed in.
"""

from __future__ import annotations

import hashlib

DEFAULT_DIMENSION = "accuracy"

SYSTEM_TEMPLATE = (
    "We would like to request your feedback on the performance of AI assistant in response to the instruction "
    "and the given input displayed following.\n\nInstruction: {instruction}\nInput: {input}\nResponse: {output}"
)
USER_TEMPLATE = (
    "Please rate according to the {dimension} of the response to the instruction and the input. Each assistant "
    "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the {dimension}. "
    "Please first output a single line containing the value indicating the scores. In the subsequent line, please "
    "provide a comprehensive explanation of your evaluation, avoiding any potential bias."
)
TEMPLATE_HASH = hashlib.sha256((SYSTEM_TEMPLATE + "\x00" + USER_TEMPLATE).encode()).hexdigest()[:16]


def check_dimension(dimension: str) -> str:
    """A dimension is any word or short phrase on one line; it is spliced into the prompt twice."""
    cleaned = " ".join(dimension.split())
    if not cleaned or "\n" in dimension or len(cleaned) > 64:
        raise ValueError(f"dimension {dimension!r} must be a word or short phrase (1-64 characters, one line)")
    return cleaned


def build_messages(
    instruction: str, input: str, output: str, dimension: str = DEFAULT_DIMENSION
) -> list[dict[str, str]]:
    """System turn with the example (the Input line stays even when empty, as in the paper), user turn asks."""
    dimension = check_dimension(dimension)
    # str.format only interprets the template: braces inside the example's text are left as they are.
    system = SYSTEM_TEMPLATE.format(instruction=instruction, input=input, output=output)
    user = USER_TEMPLATE.format(dimension=dimension)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
