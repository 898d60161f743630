"""The three judges' prompts equal METHODS.md §2 character for character, with and without an input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from curation.config import JudgeConfig
from curation.judges import make_judge, prompts

METHODS = (Path(__file__).parent / "data" / "METHODS_judges.md").read_text(encoding="utf-8")
SHARED = Path("/work/shared/METHODS.md")


def section(title: str) -> str:
    start = METHODS.index(title)
    following = METHODS.find("\n### 2", start + 1)
    return METHODS[start : following if following != -1 else len(METHODS)]


def fenced(text: str, index: int = 0) -> str:
    return re.findall(r"```\n(.*?)\n```", text, re.DOTALL)[index]


def system_line(text: str) -> str:
    return re.search(r"^System: `(.*)`$", text, re.MULTILINE).group(1)


def fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def test_the_copy_is_the_projects_methods_text() -> None:
    if not SHARED.is_file():
        pytest.skip("the shared METHODS.md is not on this machine")
    assert METHODS.split("\n", 1)[1] in SHARED.read_text(encoding="utf-8")


@pytest.mark.parametrize("input_text", ["", "Some context\nover two lines"])
def test_vicuna_prompt_is_the_papers(input_text: str) -> None:
    text = section("### 2a.")
    question = "Explain gravity." + (f"\n{input_text}" if input_text else "")
    # The user message ends with one blank line after the last sentence (FastChat's "{prompt}\n\n").
    expected = fill(fenced(text), question=question, answer_1="First answer.", answer_2="") + "\n\n"
    messages = prompts.vicuna_messages("Explain gravity.", input_text, "First answer.", "")
    assert messages == [{"role": "system", "content": system_line(text)}, {"role": "user", "content": expected}]


@pytest.mark.parametrize("input_text", ["", "2 + 2"])
def test_zheng_prompt_is_the_papers(input_text: str) -> None:
    text = section("### 2b.")
    question = "Add." + (f"\n{input_text}" if input_text else "")
    expected = fill(fenced(text), question=question, answer_a="4", answer_b="four, I think")
    messages = prompts.zheng_messages("Add.", input_text, "4", "four, I think")
    assert messages == [{"role": "system", "content": system_line(text)}, {"role": "user", "content": expected}]


def test_pandalm_prompt_with_an_input_is_the_papers() -> None:
    template = fenced(section("### 2c."))
    expected = fill(template, instruction="Summarise.", input="A long text.", response_1="Short.", response_2="Long one.")
    assert prompts.pandalm_prompt("Summarise.", "A long text.", "Short.", "Long one.") == expected


def test_pandalm_prompt_without_an_input_drops_the_block_and_changes_the_first_sentence() -> None:
    template = fenced(section("### 2c."))
    described = section("### 2c.")
    # "Without an input: first sentence ends '...defined by the Instruction. Evaluate the responses ...'"
    assert "defined by the Instruction. Evaluate the responses and generate a\nreference answer" in described
    template = template.replace(
        "defined by the Instruction with an Input that provides further context.", "defined by the Instruction."
    ).replace("### Input:\n{input}\n\n", "")
    expected = fill(template, instruction="Name a colour.", response_1="Blue", response_2="")
    assert prompts.pandalm_prompt("Name a colour.", "", "Blue", "") == expected


def test_pandalm_strips_special_tokens_from_the_responses() -> None:
    rendered = prompts.pandalm_prompt("Say hi.", "", "<s>Hello</s>", "Hi<|endoftext|>")
    assert "### Response 1:\nHello\n\n### Response 2:\nHi\n\n" in rendered


def test_each_judge_sends_its_prompt_in_the_request() -> None:
    config = JudgeConfig(model="judge-model")
    vicuna = make_judge("vicuna", config).request("Q", "", "one", "two")
    assert vicuna["model"] == "judge-model" and vicuna["messages"][0]["content"] == prompts.VICUNA_SYSTEM
    assert vicuna["temperature"] == 0.0 and vicuna["max_tokens"] == 1024
    zheng = make_judge("zheng", config).request("Q", "", "one", "two")
    assert zheng["messages"][0]["content"] == prompts.ZHENG_SYSTEM
    completion = make_judge("pandalm", config).request("Q", "", "one", "two")
    assert completion["prompt"] == prompts.pandalm_prompt("Q", "", "one", "two") and "messages" not in completion
    assert completion["max_tokens"] == 512
    chat = make_judge("pandalm", config, pandalm_endpoint="chat").request("Q", "", "one", "two")
    assert chat["messages"] == [{"role": "user", "content": completion["prompt"]}]


def test_the_version_changes_with_the_model_and_the_judge() -> None:
    config = JudgeConfig()
    versions = {make_judge(kind, config, model=model).version for kind in ("vicuna", "zheng") for model in ("m1", "m2")}
    assert len(versions) == 4
