"""Moved to :mod:`curation.store.writer` (the LLM client, the raters and the judges all commit through it)."""

from curation.store.writer import BatchWriter

__all__ = ["BatchWriter"]
