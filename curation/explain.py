"""Why an IQS score is what it is: where it sits, the sentence that moves it, and a better neighbour.

Three parts, each with numbers from the model or the dataset, never a template that reads the same for
every example:

* **reference** (:func:`reference_text`, at rating time, stored in ``ratings.explanation``): the score on
  0-5 and raw, and its place in the Alpaca pool the 0-5 scale was fitted on (the model card's quantiles).
  Costs nothing, so every IQS rating has a non-empty explanation.
* **mover** (:func:`find_movers`, when an example is opened or for a whole dataset with
  :func:`explain_dataset`): leave-one-sentence-out against the same scorer, all variants of all records
  in one batched ``score`` call. The sentence (or line) whose removal changes the score most, with the
  change in points; stored with the rating (``raw`` holds the JSON the page highlights from). About
  four times the cost of scoring (Alpaca responses have ~3.8 sentences), so it is not done at rating
  time: the ``rate`` CLI keeps its speed.
* **standing** (:func:`standing`, after rating: percentiles need the whole dataset): "top 4% of the
  dataset; 12th of 240 in cluster 'recipes'", and the nearest higher-scored example of the same cluster
  on the dataset's map (one click away on the pages). Computed from the dataset's scores when shown, since
  a rating is shared by every dataset holding the same text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.progress import ProgressFn
from curation.records import Record
from curation.studio_auth import Person, refusal, require

__all__ = [
    "Mover",
    "Segment",
    "Standing",
    "explain_dataset",
    "explain_example",
    "find_movers",
    "load_meaning",
    "mover_of",
    "reference_text",
    "sentences",
    "standing",
    "threshold_meaning",
    "without",
]

IQS_RATER = "iqs"
QUOTE_CHARS = 80
# A line break (real or a literal "\n" escape as in raw Alpaca data) or the space after . ! ? ends a segment.
_BOUNDARY = re.compile(r"(?:\r?\n|\\n)+|(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")


# ---------------------------------------------------------------- sentences


@dataclass(frozen=True)
class Segment:
    """A sentence or line of a response: ``text[start:end]`` of the original (unnormalised) response."""

    start: int
    end: int
    text: str


def sentences(text: str) -> list[Segment]:
    """The response's sentences and lines, in order, as spans of ``text`` (empty pieces skipped)."""
    found: list[Segment] = []
    position = 0
    for boundary in _BOUNDARY.finditer(text):
        _add(found, text, position, boundary.start())
        position = boundary.end()
    _add(found, text, position, len(text))
    return found


def _add(found: list[Segment], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece.rstrip())
        found.append(Segment(start + lead, start + trail, piece.strip()))


def without(text: str, segment: Segment) -> str:
    """``text`` with ``segment`` removed (the scorer collapses the whitespace left behind)."""
    return text[: segment.start] + text[segment.end :]


# ---------------------------------------------------------------- the sentence that moves the score


@dataclass(frozen=True)
class Mover:
    """Removing ``sentence`` (segment ``index`` of ``segments``) takes the score from ``score_0_5`` to
    ``without_0_5``: ``change_0_5`` = without - with (negative: the sentence was holding the score up)."""

    index: int
    segments: int
    start: int
    end: int
    sentence: str
    score: float
    score_0_5: float
    without: float
    without_0_5: float

    @property
    def change_0_5(self) -> float:
        return self.without_0_5 - self.score_0_5

    def text(self) -> str:
        quoted = _quote(self.sentence)
        if self.segments == 1:
            return (f"The response is one sentence; without it the score would be {self.without_0_5:.2f} "
                    f"({self.change_0_5:+.2f}).")
        effect = "holds it up most" if self.change_0_5 < 0 else "pulls it down most"
        return (f"Sentence {self.index + 1} of {self.segments} {effect}: removing “{quoted}” moves it "
                f"{self.score_0_5:.2f} → {self.without_0_5:.2f} ({self.change_0_5:+.2f}).")

    def as_json(self) -> str:
        return json.dumps({"mover": asdict(self)}, ensure_ascii=False)


def mover_of(raw: str | None) -> Mover | None:
    """The mover stored in a rating's ``raw`` JSON, if one was computed."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    found = data.get("mover") if isinstance(data, dict) else None
    return Mover(**found) if isinstance(found, dict) else None


def find_movers(scorer: Any, records: Sequence[Record]) -> list[Mover | None]:
    """Leave-one-sentence-out for every record in one batched call; None for an empty response."""
    instructions: list[str] = []
    inputs: list[str] = []
    outputs: list[str] = []
    split = [sentences(r.output) for r in records]
    for record, segments in zip(records, split):
        for text in [record.output, *(without(record.output, s) for s in segments)]:
            instructions.append(record.instruction)
            inputs.append(record.input)
            outputs.append(text)
    raw = scorer.score(instructions, inputs, outputs)
    scaled = scorer.to_0_5(raw)
    movers: list[Mover | None] = []
    offset = 0
    for segments in split:
        full, full_0_5 = float(raw[offset]), float(scaled[offset])
        variants = slice(offset + 1, offset + 1 + len(segments))
        offset = variants.stop
        if not segments:
            movers.append(None)
            continue
        changes = scaled[variants] - full_0_5
        best = int(np.argmax(np.abs(changes)))  # the first of equals: stable
        segment = segments[best]
        movers.append(Mover(best, len(segments), segment.start, segment.end, segment.text, full, full_0_5,
                            float(raw[variants][best]), float(scaled[variants][best])))
    return movers


# ---------------------------------------------------------------- where the score sits in the reference pool


def load_meaning(weights_dir: str | Path) -> dict[str, Any]:
    """The model folder's pool quantiles (metrics.json) and threshold shares (meaning.json), if present."""
    folder = Path(weights_dir)
    found: dict[str, Any] = {}
    metrics = folder / "metrics.json"
    if metrics.is_file():
        shipped = json.loads(metrics.read_text(encoding="utf-8")).get("shipped", {})
        found["pool_quantiles"] = {float(k): float(v) for k, v in shipped.get("alpaca_pool_0_5_quantiles", {}).items()}
    meaning = folder / "meaning.json"
    if meaning.is_file():
        found["meaning"] = json.loads(meaning.read_text(encoding="utf-8"))
    return found


def threshold_meaning(weights_dir: str | Path | None, tau: float = 4.5) -> str | None:
    """What τ on IQS's 0-5 scale lets through on expert pairs the model never saw (the folder's meaning.json)."""
    from curation.raters.iqs import BUNDLED_WEIGHTS_DIR

    meaning = load_meaning(weights_dir or BUNDLED_WEIGHTS_DIR).get("meaning") or {}
    if meaning.get("expert_0_5") and meaning.get("original_0_5"):
        expert = float(np.mean(np.asarray(meaning["expert_0_5"]) >= tau))
        original = float(np.mean(np.asarray(meaning["original_0_5"]) >= tau))
    else:
        rows = {round(float(t["tau"]), 2): t for t in meaning.get("thresholds", [])}
        row = rows.get(round(float(tau), 2))
        if row is None:
            return None
        expert, original = row["expert_share"], row["original_share"]
    return (f"IQS at τ = {tau:g}: {expert:.0%} of expert-revised responses score at least {tau:g}, "
            f"against {original:.0%} of the original ones they revised "
            f"({meaning.get('held_out') or str(meaning['pairs']) + ' CaR valid pairs, never trained on'}).")


def pool_percentile(score_0_5: np.ndarray, quantiles: dict[float, float]) -> np.ndarray:
    """Share (0-100) of the reference pool below each score, interpolated between the card's quantiles."""
    qs = sorted(quantiles.items(), key=lambda kv: kv[1])
    return np.interp(score_0_5, [v for _, v in qs], [q for q, _ in qs])


def reference_text(score: np.ndarray, score_0_5: np.ndarray, quantiles: dict[float, float] | None) -> list[str]:
    """The rating-time explanation of each score: its value and place in the Alpaca reference pool."""
    texts = [f"IQS {s5:.2f} on 0–5 (raw {s:+.2f})" for s, s5 in zip(score, score_0_5)]
    if not quantiles:
        return [t + "." for t in texts]
    low, high = min(quantiles), max(quantiles)
    percent = pool_percentile(np.asarray(score_0_5, float), quantiles)
    out = []
    for text, s5, p in zip(texts, score_0_5, percent):
        if s5 <= quantiles[low]:
            out.append(f"{text}: in the bottom {low:g}% of the Alpaca reference pool.")
        elif s5 >= quantiles[high]:
            out.append(f"{text}: in the top {100 - high:g}% of the Alpaca reference pool.")
        else:
            out.append(f"{text}: above about {p:.0f}% of the Alpaca reference pool.")
    return out


# ---------------------------------------------------------------- where it sits in its dataset and cluster


@dataclass(frozen=True)
class Standing:
    rank: int  # 1 = the highest score of the dataset
    n: int  # rated examples
    cluster_name: str | None = None
    cluster_rank: int | None = None
    cluster_n: int | None = None
    better_id: str | None = None  # the nearest (on the map) higher-scored example of the same cluster
    better_score: float | None = None

    def text(self) -> str:
        share = self.rank / self.n
        where = (f"top {_percent(share)} of the dataset" if share <= 0.5
                 else f"bottom {_percent(1 - (self.rank - 1) / self.n)} of the dataset")
        parts = [f"{where} ({_ordinal(self.rank)} of {self.n:,})"]
        if self.cluster_rank is not None:
            parts.append(f"{_ordinal(self.cluster_rank)} of {self.cluster_n:,} in cluster '{self.cluster_name}'")
        return "; ".join(parts).capitalize() + "."


def standing(record_id: str, ids: np.ndarray, values: np.ndarray, the_map: pd.DataFrame | None = None) -> Standing | None:
    """The example's rank among the rated examples (``values`` aligned to ``ids``, NaN = unrated)."""
    ids = np.asarray(ids)
    where = np.flatnonzero(ids == record_id)
    if not len(where) or np.isnan(values[where[0]]):
        return None
    value = values[where[0]]
    rated = ~np.isnan(values)
    rank = int(np.sum(values[rated] > value)) + 1
    if the_map is None or record_id not in set(the_map["id"]):
        return Standing(rank, int(rated.sum()))
    frame = the_map.set_index("id")
    frame = frame[~frame.index.duplicated()]
    scored = pd.Series(values, index=ids)
    scored = scored[~scored.index.duplicated()].reindex(frame.index)
    mine = frame.loc[record_id]
    same = frame[(frame["cluster"] == mine["cluster"]) & scored.notna().to_numpy()]
    same_scores = scored.reindex(same.index)
    better = same[(same_scores > value).to_numpy()]
    better_id = better_score = None
    if len(better):
        distance = np.hypot(better["x"].to_numpy() - mine["x"], better["y"].to_numpy() - mine["y"])
        better_id = str(better.index[int(np.argmin(distance))])
        better_score = float(scored[better_id])
    return Standing(rank, int(rated.sum()), str(mine["cluster_name"]), int((same_scores > value).sum()) + 1,
                    len(same), better_id, better_score)


def _percent(share: float) -> str:
    value = share * 100
    # Rounded up, so "top 13%" stays true of the 1st of 8 (12.5%).
    return f"{math.ceil(value - 1e-9)}%" if value >= 1 else f"{math.ceil(value * 10 - 1e-9) / 10:.1f}%"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _quote(sentence: str) -> str:
    return sentence if len(sentence) <= QUOTE_CHARS else sentence[: QUOTE_CHARS - 1].rstrip() + "…"


# ---------------------------------------------------------------- computing and storing movers


@lru_cache(maxsize=2)
def _scorer(weights: str, device: str, batch_size: int, max_length: int) -> Any:
    from curation.raters.iqs import IQSScorer  # torch: loaded once per process, when first needed

    return IQSScorer.load(weights or None, device=device, batch_size=batch_size, max_length=max_length)


def scorer_for(settings: Any) -> Any:
    config = settings.iqs
    return _scorer(str(config.weights or ""), config.device, config.batch_size, config.max_length)


def explain_example(
    store: Any, settings: Any, record: Record, rater_version: str, person: Person | None = None
) -> Mover | None:
    """The stored mover of ``record``'s IQS rating, computing it first if needed.

    What is computed is stored with the rating when ``person`` may run jobs (a visitor who may not still
    sees it, computed for them). None when the record has no ok rating of ``rater_version`` or when the
    installed scorer is another version (its numbers would not be the rating's).
    """
    row = store.ratings.stored(IQS_RATER, rater_version, [record.id]).get(record.id)
    if row is None or row.status != "ok":
        return None
    found = mover_of(row.raw)
    if found is not None:
        return found
    from curation.raters.iqs import version_prefix

    if not rater_version.startswith(version_prefix(settings.iqs.weights or None)):
        return None  # other weights: decided from the files, without loading torch
    scorer = scorer_for(settings)
    if scorer.version != rater_version:
        return None
    if refusal(person, "run_job", "store explanations") is not None:
        return find_movers(scorer, [record])[0]
    return _store_movers(store, scorer, [record], {record.id: row})[0]


def explain_dataset(
    store: Any, settings: Any, records: Sequence[Record], person: Person | None, chunk: int = 256,
    progress: ProgressFn | None = None,
) -> int:
    """Movers for every ok IQS rating of ``records`` still without one (the installed scorer's version),
    stored chunk by chunk (a killed run keeps what it did); returns how many were computed."""
    require(person, "run_job", "compute explanations")
    scorer = scorer_for(settings)
    unique = list({r.id: r for r in records}.values())
    rows = store.ratings.stored(IQS_RATER, scorer.version, [r.id for r in unique])
    todo = [r for r in unique if r.id in rows and rows[r.id].status == "ok" and mover_of(rows[r.id].raw) is None
            and sentences(r.output)]  # an empty response has no sentence to remove
    todo.sort(key=lambda r: len(r.output))  # variants of similar length share batches
    for start in range(0, len(todo), chunk):
        _store_movers(store, scorer, todo[start : start + chunk], rows)
        if progress is not None:
            progress(min(start + chunk, len(todo)), len(todo), "explaining")
    return len(todo)


def _store_movers(store: Any, scorer: Any, records: Sequence[Record], rows: dict[str, Any]) -> list[Mover | None]:
    movers = find_movers(scorer, records)
    updates = []
    for record, mover in zip(records, movers):
        if mover is None:
            continue
        # Only ratings without a mover get here, so the stored text is the rating-time reference part.
        base = rows[record.id].explanation or ""
        updates.append((record.id, f"{base} {mover.text()}".strip(), mover.as_json()))
    store.ratings.set_explanations(IQS_RATER, scorer.version, updates)
    return movers

