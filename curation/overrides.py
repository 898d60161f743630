"""Recording a human keep/drop decision on someone's behalf: the role check, then the append-only log.

Entry point: :func:`record_override`. The studio's Explore page calls it with the signed-in person; the
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
