"""What every rater is: a name and version (stored with each rating) and ``rate(records) -> results``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from curation.progress import ProgressFn
from curation.records import Record
from curation.store import RatingRow

__all__ = ["ProgressFn", "Rater", "RatingResult", "ResultsFn"]

# ProgressFn is the library's one shape, (done, total, message); it may raise (a job's cancel request
# arrives that way). Re-exported here for callers that imported it from the raters.
# Called with results as they complete, so a caller can store them before the rest is done.
ResultsFn = Callable[[Sequence["RatingResult"]], None]


@dataclass(frozen=True)
class RatingResult:
    record_id: str
    status: str  # ok | unparsed (raw text kept, no number) | error (no answer; retried on the next run)
    score: float | None  # on the rater's own scale, higher is better
    score_0_5: float | None
    explanation: str | None = None
    raw: str | None = None  # the rater's whole answer, or the error

    def to_row(self, rater: str, rater_version: str, dimension: str | None, job_id: int | None) -> RatingRow:
        return RatingRow(
            record_id=self.record_id,
            rater=rater,
            rater_version=rater_version,
            status=self.status,
            score=self.score,
            score_0_5=self.score_0_5,
            explanation=self.explanation,
            raw=self.raw,
            dimension=dimension,
            job_id=job_id,
        )


class Rater(Protocol):
    name: str  # e.g. "iqs", "llm:gpt-4:accuracy"
    version: str  # changes whenever the same record could get a different rating
    dimension: str | None

    def rate(
        self, records: Sequence[Record], progress: ProgressFn | None = None, on_results: ResultsFn | None = None
    ) -> list[RatingResult]:
        """One result per record, in order; ``on_results`` sees them as they complete."""
        ...
