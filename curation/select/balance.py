"""Balance of a selection: the kept ratio per category and per skill keyword, beside the overall ratio.

AlpaGasus' filter kept 18% of Alpaca overall but only 12% of its coding examples (appendix E); this report
makes such starvation visible for any selection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curation.select.methods import NO_CATEGORY

# AlpaGasus appendix E: the coding keywords whose examples its filter starved (Java, C++, C#, Python).
KEYWORD_GROUPS: dict[str, str] = {
    "Java": r"\bjava\b(?!\s*script)",
    "C++": r"(?<![\w+])c\+\+",
    "C#": r"(?<![\w#])c#",
    "Python": r"\bpython\b",
}
CODING_GROUP = "coding (Java, C++, C#, Python)"
# A group kept at less than this fraction of the overall kept ratio is called out.
STARVED_BELOW = 0.75


def balance_report(
    selection: pd.DataFrame,
    categories: Sequence[str | None] | None = None,
    texts: Sequence[str] | None = None,
    groups: Mapping[str, str] = KEYWORD_GROUPS,
) -> pd.DataFrame:
    """Kept ratio per category and per keyword group beside the overall ratio.

    ``categories`` and ``texts`` (instruction + input) align with the selection's rows. Columns:
    ``kind`` (overall/category/keyword), ``group``, ``total``, ``kept``, ``kept_ratio``, ``vs_overall``
    (kept ratio ÷ overall kept ratio) and ``note``, which names a starved group.
    """
    keep = selection["keep"].to_numpy(bool)
    overall = keep.mean() if len(keep) else 0.0
    rows = [_balance_row("overall", "all examples", keep, overall)]
    if categories is not None:
        labels = pd.Series(
            [NO_CATEGORY if c is None or pd.isna(c) or c == "" else str(c) for c in categories], dtype=object
        )
        for name in sorted(labels.unique()):
            rows.append(_balance_row("category", name, keep[(labels == name).to_numpy()], overall))
    if texts is not None and groups:
        text_series = pd.Series(list(texts), dtype=object).fillna("")
        any_group = np.zeros(len(keep), bool)
        for name, pattern in groups.items():
            hit = text_series.str.contains(pattern, case=False, regex=True).to_numpy(bool)
            any_group |= hit
            rows.append(_balance_row("keyword", name, keep[hit], overall))
        if groups is KEYWORD_GROUPS:
            rows.append(_balance_row("keyword", CODING_GROUP, keep[any_group], overall))
    return pd.DataFrame(rows, columns=["kind", "group", "total", "kept", "kept_ratio", "vs_overall", "note"])


def _balance_row(kind: str, group: str, keep: np.ndarray, overall: float) -> dict[str, Any]:
    total = len(keep)
    kept = int(keep.sum())
    ratio = kept / total if total else float("nan")
    relative = ratio / overall if total and overall else float("nan")
    note = ""
    if kind != "overall" and total and relative < STARVED_BELOW:
        note = f"starved: keeps {ratio:.0%} (loses {1 - ratio:.0%}) against {overall:.0%} overall"
    return {
        "kind": kind,
        "group": group,
        "total": total,
        "kept": kept,
        "kept_ratio": ratio,
        "vs_overall": relative,
        "note": note,
    }
