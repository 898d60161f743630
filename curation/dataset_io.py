"""Reading, importing and exporting datasets on someone's behalf: the checks the CLI and the studio share.

Entry points: :func:`save_upload`, :func:`read_source`, :func:`import_dataset`, :func:`export_dataset`.
Each takes the acting :class:`~curation.studio_auth.Person` and calls ``require`` first, so a page that
forgot to hide a button still cannot read a server file, import or write an export for someone who may
not. Reading a file the person uploaded needs an account (``import``); reading any other path on the
server is a lead's action (``read_server_path``): its rejection previews would show the file's lines.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from curation.config import Settings
from curation.formats import EXTENSIONS, ReadResult, read_file, write_dataset_info, write_records
from curation.select.manifest import export_path
from curation.store import DatasetInfo, Store
from curation.store.datasets import check_name
from curation.studio_auth import Person, require

UPLOADS = "uploads"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class NothingToLoad(ValueError):
    """A file none of whose rows can be loaded; the message says why (one sentence)."""


def uploads_folder(settings: Settings) -> Path:
    return settings.workspace / UPLOADS


def save_upload(settings: Settings, person: Person | None, file_name: str, data: bytes) -> Path:
    """Keep an uploaded file in the workspace (its own folder, a safe name) and return its path."""
    require(person, "import", "upload a file")
    safe = _UNSAFE_FILE_CHARS.sub("_", Path(file_name).name).lstrip(".") or "upload"
    folder = uploads_folder(settings) / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    path.write_bytes(data)
    return path


def read_source(
    settings: Settings,
    person: Person | None,
    path: Path,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> ReadResult:
    """Read and validate ``path`` for ``person``: an upload needs an account, any other path a lead."""
    if _is_upload(settings, path):
        require(person, "import", "validate an uploaded file")
    else:
        require(person, "read_server_path", "read a file on the studio's machine (upload it instead)")
    return read_file(path, fmt=fmt, mapping=mapping, max_field_chars=settings.validation.max_field_chars, source=path.name)


def _is_upload(settings: Settings, path: Path) -> bool:
    # resolve() follows symlinks and "..", so an upload folder path cannot point elsewhere.
    return path.resolve().is_relative_to(uploads_folder(settings).resolve())


def import_dataset(
    store: Store, person: Person | None, result: ReadResult, name: str, replace: bool = False
) -> DatasetInfo:
    """Store what ``result`` loaded as dataset ``name``; nothing is created when no row loads."""
    someone = require(person, "import", "import a dataset")
    check_name(name)
    reason = result.nothing_loadable()
    if reason:
        raise NothingToLoad(reason)
    return store.datasets.create(
        name, result.records, result.rejections, source_path=str(result.path.resolve()), fmt=result.format,
        created_by=someone.name, replace=replace,
    )


def export_dataset(
    store: Store,
    settings: Settings,
    person: Person | None,
    name: str,
    fmt: str,
    out: Path | None = None,
    dataset_info: bool = False,
) -> tuple[Path, int]:
    """Write dataset ``name``; by default to ``<workspace>/exports/<name><ext>`` (never outside it).

    ``out`` is an explicit path chosen by the machine's owner at the shell (the CLI); the studio never
    passes one.
    """
    require(person, "export", "export a dataset")
    info = store.datasets.get(check_name(name))
    target = out if out is not None else export_path(settings.workspace, f"{info.name}{EXTENSIONS[fmt]}")
    count = write_records(store.datasets.records(info.id), target, fmt)
    if dataset_info:
        write_dataset_info(target.parent, info.name, target.name, fmt)
    return target, count
