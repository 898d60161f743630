"""The text every voter reads: AlpaGasus Appendix J, Table 15 (METHODS.md §3), character for character."""

from __future__ import annotations

INTRO = (
    "You'll be presented with a series of questions. For each question, two answers will be provided. Your task is "
    "to read both answers carefully and decide which one you believe is better. When judging, consider:"
)
CRITERIA = (
    "Relevance: Does the answer directly address the question?",
    "Completeness: Is the answer comprehensive?",
    "Coherence: Is the answer logically structured and easy to understand?",
    "Accuracy: Is the information provided in the answer correct?",
)
QUESTION = "Question:"
ANSWER_A = "Answer A:"
ANSWER_B = "Answer B:"
ASK = "Comparing these two answers, which answer is better?"
# The three options in their order, and the choice each one stores.
OPTIONS = (
    ("A", "Answer A is significantly better."),
    ("B", "Answer B is significantly better."),
    ("neither", "Neither is significantly better."),
)


def question_text(instruction: str, input: str) -> str:
    """The question as shown: the instruction, then its input (if any) on the next lines."""
    return f"{instruction}\n\n{input}" if input.strip() else instruction


def full_text(question: str, answer_a: str, answer_b: str) -> str:
    """The whole interface as one text (what the page shows, piece by piece)."""
    options = "\n".join(f"{i}. {label}" for i, (_, label) in enumerate(OPTIONS, start=1))
    return (f"{INTRO}\n\n" + "\n".join(CRITERIA) + f"\n\n{QUESTION}\n{question}\n\n{ANSWER_A}\n{answer_a}\n\n"
            f"{ANSWER_B}\n{answer_b}\n\n{ASK}\n{options}")
