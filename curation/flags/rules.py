"""The rule set: which rules exist, in which order they are listed, and :func:`flag_records`."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from curation.config import FlagConfig
from curation.flags.base import FlagEmbeddings, FlagHit
from curation.flags.content import EchoRule, PlaceholderRule, RefusalRule
from curation.flags.duplicates import ExactDuplicateRule, NearDuplicateRule
from curation.flags.offtopic import OffTopicRule
from curation.flags.repetition import RepetitionRule
from curation.flags.truncation import TruncationRule
from curation.records import Record

RECORD_RULES = (PlaceholderRule, RefusalRule, TruncationRule, RepetitionRule, EchoRule)
CORPUS_RULES = (ExactDuplicateRule,)
EMBEDDING_RULES = (OffTopicRule, NearDuplicateRule)
# The order in which a record's hits are listed.
RULE_ORDER = tuple(rule.name for rule in RECORD_RULES + CORPUS_RULES + EMBEDDING_RULES)
TEXT_RULE_NAMES = tuple(rule.name for rule in RECORD_RULES + CORPUS_RULES)
EMBEDDING_RULE_NAMES = tuple(rule.name for rule in EMBEDDING_RULES)
DESCRIPTIONS = {rule.name: rule.description for rule in RECORD_RULES + CORPUS_RULES + EMBEDDING_RULES}


def rules_to_run(with_embeddings: bool, only: Collection[str] | None = None) -> list[str]:
    """Rule names in listing order; unknown names in ``only`` get one clear error."""
    if only:
        unknown = sorted(set(only) - set(RULE_ORDER))
        if unknown:
            raise ValueError(f"unknown flag rule(s) {', '.join(unknown)}; known: {', '.join(RULE_ORDER)}")
        needing_vectors = sorted(set(only) & set(EMBEDDING_RULE_NAMES))
        if needing_vectors and not with_embeddings:
            verb = "needs" if len(needing_vectors) == 1 else "need"
            raise ValueError(f"{', '.join(needing_vectors)} {verb} embeddings; run without --no-embeddings")
    available = RULE_ORDER if with_embeddings else TEXT_RULE_NAMES
    return [name for name in available if not only or name in only]


def flag_records(
    records: Sequence[Record],
    config: FlagConfig,
    embeddings: FlagEmbeddings | None = None,
    *,
    rules: Collection[str] | None = None,
) -> list[list[FlagHit]]:
    """One list of hits per record, in record order; a record no rule fired on gets ``[]``."""
    names = set(rules_to_run(embeddings is not None, rules))
    if embeddings is not None:
        embeddings.check(len(records))
    found: dict[str, dict[int, str]] = {}
    for rule in (cls(config) for cls in RECORD_RULES if cls.name in names):
        found[rule.name] = {i: reason for i, r in enumerate(records) if (reason := rule.check(r))}
    for corpus_rule in (cls(config) for cls in CORPUS_RULES if cls.name in names):
        found[corpus_rule.name] = corpus_rule.find(records)
    if embeddings is not None:
        for embedding_rule in (cls(config) for cls in EMBEDDING_RULES if cls.name in names):
            found[embedding_rule.name] = embedding_rule.find(records, embeddings)
    return [
        [FlagHit(name, found[name][index]) for name in RULE_ORDER if index in found.get(name, {})]
        for index in range(len(records))
    ]

