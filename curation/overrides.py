"""Recording a human keep/drop decision on someone's behalf: the role check, then the append-only log.

Entry points: :func:`record_override` (one example) and :func:`record_overrides` (a selection, one reason). The studio's Explore page calls it with the signed-in person; the
store's ``overrides.add`` is the bare write underneath (it checks nothing about who may decide).
"""

from __future__ import annotations

from curation.store import Decision, Store
from curation.studio_auth import Person, require


def record_override(
    store: Store, person: Person | None, dataset_id: int, record_id: str, decision: str, reason: str = ""
) -> Decision:
    """Append ``decision`` (keep, drop or clear) for one example, in the name of ``person``."""
    someone = require(person, "override", "override the machine's verdict")
    return store.overrides.add(dataset_id, record_id, decision, user=someone.name, reason=reason)


def record_overrides(
    store: Store, person: Person | None, dataset_id: int, record_ids: list[str], decision: str, reason: str
) -> list[Decision]:
    """The same decision and reason for every example in ``record_ids`` (e.g. a lasso on the Map): one audit
    entry per example, all written in one transaction (all or none)."""
    someone = require(person, "override", "override the machine's verdict")
    if decision != "clear" and not reason.strip():
        raise ValueError("say why in the reason: the decision is kept with it in the audit log")
    return store.overrides.add_many(dataset_id, list(dict.fromkeys(record_ids)), decision, user=someone.name,
                                    reason=reason.strip())
