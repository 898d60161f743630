"""A background thread that commits rows as they arrive, batching whatever queued up meanwhile.

Raters, the LLM client and the judges produce results from an event loop (or a tight scoring loop);
committing each one there would stall it on the database. Here the loop only enqueues, a single thread commits, and under load the
rows that arrived during one commit go into the next: one commit per row when things are slow, few
commits when they are fast. A process killed with SIGKILL loses only the rows of the last few
milliseconds, which the next run redoes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
_STOP = object()


# Called in the writer thread after each batch: (the batch, None) once committed, or (the batch, the error).
AfterWrite = Callable[[list[Item], BaseException | None], None]


class BatchWriter(Generic[Item]):
    def __init__(
        self,
        write: Callable[[list[Item]], None],
        name: str = "writer",
        max_batch: int = 500,
        after: AfterWrite[Item] | None = None,
    ) -> None:
        self._write = write
        self._after = after
        self._max_batch = max_batch
        self._queue: queue.Queue[object] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        self._raise_if_failed()
        self._queue.put(item)

    def close(self) -> None:
        """Commit everything queued, stop the thread, and re-raise a failed commit."""
        self._queue.put(_STOP)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"storing results failed: {self._error}") from self._error

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[object] = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch and self._error is None:
                try:
                    self._write(batch)  # type: ignore[arg-type]
                except BaseException as err:  # noqa: BLE001 -- kept and raised in the producer, which can report it
                    self._error = err
            if batch and self._after is not None:
                self._after(batch, self._error)  # type: ignore[arg-type]
