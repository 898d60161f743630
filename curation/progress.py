"""The one shape of a progress report: ``progress(done, total, message)``.

Every long call in the library takes ``progress: ProgressFn | None``; a job's ``ctx.progress`` has this
shape, and so does the CLI's bar (:func:`curation.cli.common.progress_bar`). It may raise (a job's
cancel request arrives that way), so callers report between units of work, never inside a transaction.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int, str], None]


def silent(done: int, total: int, message: str = "") -> None:
    """A progress function that reports nowhere."""
