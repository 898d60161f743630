"""The store: every dataset, rating, flag, override, job and answer, in SQLite (default) or PostgreSQL.

Entry point: :class:`Store`, opened from the settings. Each concept has its own repository attribute
(``store.datasets``, ``store.ratings`` ...), so a caller reads like what it does.
"""

from __future__ import annotations

from curation.config import Settings
from curation.store.answers import AnswerRow, Answers, AnswerSet
from curation.store.calls import CallRow, Calls
from curation.store.datasets import AlreadyExists, DatasetInfo, Datasets, InvalidName, NotFound
from curation.store.db import DEFAULT_BUSY_TIMEOUT_S, Database
from curation.store.flags import FlagRow, Flags
from curation.store.jobs import Jobs
from curation.store.judgments import JudgmentRow, Judgments, RunInfo, RunSpec
from curation.store.models import ModelInfo, Models
from curation.store.overrides import Decision, Overrides
from curation.store.ratings import RaterSummary, RatingRow, Ratings
from curation.store.schema import utcnow
from curation.store.schema_security import SetupToken, SignInFailure  # noqa: F401 (their tables)
from curation.store.selections import SelectionInfo, Selections
from curation.store.studies import Studies
from curation.store.testsets import TestSetInfo, TestSets
from curation.store.users import Account, Users

__all__ = [
    "Account",
    "AlreadyExists",
    "AnswerRow",
    "AnswerSet",
    "CallRow",
    "DatasetInfo",
    "Decision",
    "FlagRow",
    "InvalidName",
    "JudgmentRow",
    "ModelInfo",
    "NotFound",
    "RaterSummary",
    "RatingRow",
    "RunInfo",
    "RunSpec",
    "SelectionInfo",
    "Store",
    "TestSetInfo",
    "utcnow",
]


class Store:
    def __init__(self, url: str, run_migrations: bool = True, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.db = Database(url, run_migrations=run_migrations, busy_timeout_s=busy_timeout_s)
        self.datasets = Datasets(self.db)
        self.ratings = Ratings(self.db)
        self.calls = Calls(self.db)
        self.flags = Flags(self.db)
        self.overrides = Overrides(self.db)
        self.users = Users(self.db)
        self.testsets = TestSets(self.db)
        self.selections = Selections(self.db)
        self.jobs = Jobs(self.db)
        self.models = Models(self.db)
        self.judgments = Judgments(self.db)
        self.studies = Studies(self.db)
        self.answers = Answers(self.db)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        return cls(settings.db_url, busy_timeout_s=settings.jobs.busy_timeout_s)

    @property
    def url(self) -> str:
        return self.db.url

    def close(self) -> None:
        self.db.dispose()
