"""The training data: CaR's expert/original pairs, normalised, and the Alpaca pool the calibration is fitted on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.raters.iqs import format_response
from curation.textnorm import normalize_text

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "training" / "data" / "iqs"
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"


@dataclass(frozen=True)
class Pair:
    prompt: str  # "Instruction: ... Input: ...", normalised
    pos: str  # "Response: ...", the expert-revised response, normalised
    neg: str  # "Response: ...", the original response, normalised

    @property
    def pos_words(self) -> int:
        return len(self.pos.split()) - 1  # minus the "Response:" tag

    @property
    def neg_words(self) -> int:
        return len(self.neg.split()) - 1

    @property
    def expert_not_longer(self) -> bool:
        return self.pos_words <= self.neg_words

    @property
    def identical(self) -> bool:
        """Expert and original are the same text once normalised (the revision only touched escapes
        or line breaks, or nothing): no scorer can separate them, and they teach nothing."""
        return self.pos == self.neg


def load_pairs(path: Path) -> list[Pair]:
    """Read a CaR pairs CSV with plain csv (pandas 3's Arrow strings choke on lone surrogates)."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Pair(normalize_text(r["src"]), _response(r["pos"]), _response(r["neg"])) for r in rows]


def _response(text: str) -> str:
    body = normalize_text(text)
    return format_response(body.removeprefix("Response:").strip())


def load_pool(path: Path) -> tuple[list[str], list[str], list[str]]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return (
        [r.get("instruction", "") for r in records],
        [r.get("input", "") for r in records],
        [r.get("output", "") for r in records],
    )
