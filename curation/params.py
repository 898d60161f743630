"""A request that travels as a job's params: a dataclass written to the store as JSON and read back."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self


class JobParams:
    """Mixin for a request dataclass: ``as_params()`` for ``jobs.start``, ``from_params()`` in the worker.

    Unknown keys (params written by an older or newer version) are ignored rather than failing the job.
    """

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in params.items() if k in names})

    def as_params(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]
