"""What the Compare page shows, computed here: run tables, the papers' stacked W/T/L bars, capacity per
skill, the items behind a bar and one item's two reviews. Figures are plotly (imported lazily).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from curation.judges.rule import ORDERS
from curation.judges.stats import UNCATEGORISED, ItemResult, agreement, item_results, summarize
from curation.store import JudgmentRow, RunInfo, Store

OUTCOME_ORDER = ("win", "tie", "lose", "unparsed")
COLOURS = {"win": "#2e7d32", "tie": "#9e9e9e", "lose": "#c62828", "unparsed": "#f9a825"}


@dataclass(frozen=True)
class RunReport:
    run: RunInfo
    rows: list[JudgmentRow]
    items: list[ItemResult]
    summary: dict[str, Any]

    @property
    def label(self) -> str:
        return f"#{self.run.id} {self.run.testset} · {self.run.judge} ({self.run.judge_model})"


def load_report(store: Store, run_id: int, samples: int = 1000) -> RunReport:
    run = store.judgments.run(run_id)
    rows = store.judgments.rows(run_id)
    orders = run.params.get("orders") or list(ORDERS)
    return RunReport(run, rows, item_results(rows, orders), summarize(rows, orders, samples))


def runs_frame(reports: Sequence[RunReport]) -> pd.DataFrame:
    """One row per run: who against whom, where, by which judge, and what it adds up to so far."""
    records = []
    for report in reports:
        s, run = report.summary, report.run
        ci = (s.get("ci95") or {}).get("ws")
        records.append({
            "run": run.id,
            "source": run.source,
            "A": run.model_a,
            "B": run.model_b,
            "test set": run.testset,
            "judge": f"{run.judge} ({run.judge_model})",
            "judged": f"{s['n'] + s['unparsed']}/{run.n_items}",
            "W": s["win"], "T": s["tie"], "L": s["lose"],
            "WS": s["ws"],
            "WS 95% CI": "" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}",
            "WR": s["wr"], "QS": s["qs"],
            "capacity %": s["capacity"],
            "unparsed": s["unparsed"],
            "consistency": s["consistency"],
            "favours": s["position"]["favours"] or "",
            "longer wins": s["longer_answer"]["share"],
        })
    return pd.DataFrame.from_records(records)


def _counts(summary: Mapping[str, Any]) -> dict[str, int]:
    return {outcome: int(summary.get(outcome, 0)) for outcome in OUTCOME_ORDER}


def _stacked(labels: list[str], counts: list[dict[str, int]], title: str, height: int) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for outcome in OUTCOME_ORDER:
        values = [c[outcome] for c in counts]
        totals = [max(sum(c.values()), 1) for c in counts]
        figure.add_bar(
            name=outcome.capitalize(), y=labels, x=[100 * v / t for v, t in zip(values, totals)], orientation="h",
            marker_color=COLOURS[outcome], text=[str(v) if v else "" for v in values], textposition="inside",
            customdata=[[label, outcome, v] for label, v in zip(labels, values)],
            hovertemplate="%{customdata[0]}: %{customdata[2]} " + outcome + " (%{x:.0f}%)<extra></extra>",
        )
    figure.update_layout(barmode="stack", title=title, height=height, xaxis_title="% of items",
                         yaxis={"autorange": "reversed"},
                         legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1.0, "xanchor": "right",
                                 "traceorder": "normal"},
                         margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return figure


def wtl_figure(reports: Sequence[RunReport]) -> Any:
    """The papers' figure: one stacked Win/Tie/Lose bar per test set (and judge), A's side."""
    labels = [report.label for report in reports]
    title = "Win / Tie / Lose of A against B per test set"
    return _stacked(labels, [_counts(r.summary) for r in reports], title, 120 + 45 * len(reports))


def category_figure(report: RunReport) -> Any:
    """Stacked W/T/L per category (Vicuna categories, WizardLM skills, MT-Bench categories, Self-Instruct apps)."""
    categories = category_counts(report)
    labels = list(categories)
    title = f"{report.run.model_a} vs {report.run.model_b} per category — {report.run.testset}"
    return _stacked(labels, [categories[c] for c in labels], title, 140 + 28 * len(labels))


def category_counts(report: RunReport) -> dict[str, dict[str, int]]:
    return {name: _counts(values) for name, values in report.summary["per_category"].items()}


def capacity_figure(report: RunReport) -> Any | None:
    """A's total judge score over B's per category, % (AlpaGasus Figs. 10, 27-29); None without scores."""
    import plotly.graph_objects as go

    values = {c: v["capacity"] for c, v in report.summary["per_category"].items() if v["capacity"] is not None}
    if not values:
        return None
    labels = list(values)
    figure = go.Figure(go.Bar(y=labels, x=[values[c] for c in labels], orientation="h", marker_color="#1565c0",
                              text=[f"{values[c]:.0f}%" for c in labels], textposition="outside"))
    figure.add_vline(x=100, line_dash="dash", line_color="#555")
    figure.update_layout(title=f"Capacity of {report.run.model_a} (% of {report.run.model_b}'s judge score)",
                         height=140 + 28 * len(labels), yaxis={"autorange": "reversed"}, xaxis_title="%",
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def picked_bar(event: Mapping[str, Any] | None, labels: Sequence[str]) -> tuple[str, str] | None:
    """(bar label, outcome) of the first clicked segment of a stacked figure (the event read dict-style)."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        curve, index = point.get("curve_number"), point.get("point_index")
        if curve is None or index is None or not 0 <= int(curve) < len(OUTCOME_ORDER) or int(index) >= len(labels):
            continue
        return labels[int(index)], OUTCOME_ORDER[int(curve)]
    return None


def items_behind(report: RunReport, category: str | None, outcome: str | None) -> pd.DataFrame:
    """The items of one bar segment (category, outcome); None for either means all."""
    records = []
    for item in report.items:
        name = item.category or UNCATEGORISED
        if (category is None or name == category) and (outcome is None or item.outcome == outcome):
            first = next(r for r in report.rows if r.item_id == item.item_id)
            records.append({"id": item.item_id, "category": name, "result for A": item.outcome,
                            "question": first.instruction[:200]})
    return pd.DataFrame.from_records(records, columns=["id", "category", "result for A", "question"])


def item_detail(report: RunReport, item_id: str) -> dict[str, Any]:
    """One item: the question, both answers, and each order's review with its parsed verdict."""
    rows = [r for r in report.rows if r.item_id == item_id]
    if not rows:
        raise KeyError(item_id)
    first = rows[0]
    question = first.instruction + (f"\n\n{first.input}" if first.input else "")
    outcome = next(i.outcome for i in report.items if i.item_id == item_id)
    reviews = []
    for row in sorted(rows, key=lambda r: r.order_shown):
        shown = "A shown first" if row.order_shown == "ab" else "B shown first"
        verdict = {"a": f"{report.run.model_a} (A) better", "b": f"{report.run.model_b} (B) better",
                   "tie": "tie"}.get(row.winner or "", row.status)
        scores = "" if row.score_a is None else f" — scores A {row.score_a:g}, B {row.score_b:g}"
        reviews.append({"order": shown, "status": row.status, "verdict": verdict + scores, "review": row.raw or "",
                        "problem": row.problem})
    return {"question": question, "answer_a": first.answer_a, "answer_b": first.answer_b, "outcome": outcome,
            "category": first.category or UNCATEGORISED, "reviews": reviews}


def agreement_frame(reports: Sequence[RunReport]) -> pd.DataFrame:
    """Judges side by side: for runs on the same models and test set, their item-level agreement."""
    groups: dict[tuple[str, str, str], list[RunReport]] = defaultdict(list)
    for report in reports:
        groups[(report.run.model_a, report.run.model_b, report.run.testset)].append(report)
    records = []
    for (model_a, model_b, testset), group in groups.items():
        if len(group) < 2:
            continue
        for pair in agreement({r.label: r.items for r in group}):
            records.append({"A": model_a, "B": model_b, "test set": testset, **pair})
    return pd.DataFrame.from_records(records)
