"""Rule flags: each finding names its rule and gives a reason a person understands without the code.

Entry points:

* :func:`flag_records` — records in, one list of :class:`FlagHit` per record out (in order). The cheap
  text rules always run; the embedding rules (``off_topic``, ``near_duplicate``) run only when
  :class:`FlagEmbeddings` are given.
* :func:`flag_dataset` — flags a workspace dataset and stores the hits (``store.flags``).
* :func:`flag_job` — the job handler for kind ``"flags"``.

Rules follow datatrove's filters: one small object per rule, configured from ``FlagConfig``, with a
``name``, a ``description`` and either ``check(record)`` (one record) or ``find(records, ...)``
(rules that compare records), returning the reason or nothing.
"""

from __future__ import annotations

from curation.flags.base import FlagEmbeddings, FlagHit
from curation.flags.dataset import flag_dataset, flag_job
from curation.flags.rules import (
    DESCRIPTIONS,
    EMBEDDING_RULE_NAMES,
    RULE_ORDER,
    TEXT_RULE_NAMES,
    flag_records,
    rules_to_run,
)

__all__ = [
    "DESCRIPTIONS",
    "EMBEDDING_RULE_NAMES",
    "RULE_ORDER",
    "TEXT_RULE_NAMES",
    "FlagEmbeddings",
    "FlagHit",
    "flag_dataset",
    "flag_job",
    "flag_records",
    "rules_to_run",
]
