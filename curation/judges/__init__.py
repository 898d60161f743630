"""Pairwise judges (METHODS.md §2): GPT-4 with the Vicuna prompt, Zheng's [[A]]/[[B]]/[[C]], PandaLM.

Entry points: :func:`curation.judges.run.run_comparison` (judge model A against model B or the
references, both orders), :mod:`curation.judges.stats` (W/T/L, WS/WR/QS, capacity, position bias,
agreement), :func:`curation.judges.imports.import_reviews` (published reviews beside new runs).
"""

from curation.judges.base import JUDGE_KINDS, Judge, JudgeError, make_judge

__all__ = ["JUDGE_KINDS", "Judge", "JudgeError", "make_judge"]
