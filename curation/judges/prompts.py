"""The three judges' prompts, character for character those of METHODS.md §2 (a test compares them).

Texts are data: any change here changes every judge's version (and so which stored verdicts are reused).
"""

from __future__ import annotations

import hashlib
import re

# §2a: GPT-4 "Vicuna" review prompt (AlpaGasus Fig. 23; FastChat's reviewer prompt), two scores 1-10.
VICUNA_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
VICUNA_REVIEW = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above.\n"
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant "
    "receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n"
    "Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive "
    "explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses "
    "were presented does not affect your judgment."
)
VICUNA_USER = (
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_2}\n\n[The End of Assistant 2's Answer]\n\n"
    "[System]\n{prompt}\n\n"
)

# §2b: Zheng et al. (MT-Bench) pairwise prompt, verdict [[A]] / [[B]] / [[C]].
ZHENG_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. You should choose the assistant that follows the user's instructions and "
    "answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any positional biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
    'possible. After providing your explanation, output your final verdict by strictly following this format: '
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
ZHENG_USER = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

# §2c: PandaLM, a local 7B judge; a plain completion prompt.
PANDALM_WITH_INPUT = (
    "Below are two responses for a given task. The task is defined by the Instruction with an Input that provides "
    "further context. Evaluate the responses and generate a reference answer for the task.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n"
    "### Response 1:\n{response_1}\n\n### Response 2:\n{response_2}\n\n### Evaluation:"
)
PANDALM_NO_INPUT = (
    "Below are two responses for a given task. The task is defined by the Instruction. Evaluate the responses and "
    "generate a reference answer for the task.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Response 1:\n{response_1}\n\n### Response 2:\n{response_2}\n\n### Evaluation:"
)
# PandaLM strips the tokenizer's special tokens from the responses before building the prompt.
_SPECIAL_TOKENS = re.compile(r"</?s>|<unk>|<pad>|\[PAD\]|<\|endoftext\|>|<\|im_(?:start|end)\|>")


def question_text(instruction: str, input: str) -> str:
    """The question both chat judges see: the instruction, then the input on a new line when there is one."""
    return f"{instruction}\n{input}" if input else instruction


def vicuna_messages(instruction: str, input: str, answer_1: str, answer_2: str) -> list[dict[str, str]]:
    user = VICUNA_USER.format(
        question=question_text(instruction, input), answer_1=answer_1, answer_2=answer_2, prompt=VICUNA_REVIEW
    )
    return [{"role": "system", "content": VICUNA_SYSTEM}, {"role": "user", "content": user}]


def zheng_messages(instruction: str, input: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    user = ZHENG_USER.format(question=question_text(instruction, input), answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": ZHENG_SYSTEM}, {"role": "user", "content": user}]


def strip_special_tokens(text: str) -> str:
    return _SPECIAL_TOKENS.sub("", text).strip()


def pandalm_prompt(instruction: str, input: str, response_1: str, response_2: str) -> str:
    values = {
        "instruction": instruction,
        "response_1": strip_special_tokens(response_1),
        "response_2": strip_special_tokens(response_2),
    }
    if input:
        return PANDALM_WITH_INPUT.format(input=input, **values)
    return PANDALM_NO_INPUT.format(**values)


def templates_hash() -> str:
    """Changes with any prompt text: part of each judge's version."""
    texts = [VICUNA_SYSTEM, VICUNA_REVIEW, VICUNA_USER, ZHENG_SYSTEM, ZHENG_USER, PANDALM_WITH_INPUT, PANDALM_NO_INPUT]
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
