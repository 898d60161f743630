"""The Alpaca template is METHODS.md §1 character for character."""

from curation.alpaca import prompt_sha256, render_prompt

WITH_INPUT = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.

### Instruction:
Summarise the text.

### Input:
Cats sleep a lot.

### Response:
"""

NO_INPUT = """Below is an instruction that describes a task. Write a response that appropriately completes the request.

### Instruction:
Name a colour.

### Response:
"""


def test_prompt_with_input_matches_methods() -> None:
    assert render_prompt("Summarise the text.", "Cats sleep a lot.") == WITH_INPUT


def test_prompt_without_input_matches_methods() -> None:
    assert render_prompt("Name a colour.", "") == NO_INPUT
    assert render_prompt("Name a colour.", "   ") == NO_INPUT


def test_hash_follows_the_rendered_text() -> None:
    assert prompt_sha256("a", "b") != prompt_sha256("a", "")
    assert prompt_sha256("a", "") == prompt_sha256("a")
