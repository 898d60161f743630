"""Turn a raw row (a dict from any reader) into a Record or a Rejection, with the reason.

This is where every file format meets the same rules, so that "what counts as a loadable row" is
decided once: column aliases, ShareGPT conversations, types, sizes, encoding and duplicates.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from curation.records import Record, record_id

# Canonical field -> names other datasets use for it, tried in order when the canonical name is absent.
ALIASES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "Instruction", "prompt", "question", "query", "text"),
    "input": ("input", "Input", "context"),
    "output": ("output", "Output", "response", "Response", "completion", "answer"),
    "category": ("category", "Skill", "motivation_app", "task_type"),
    "source": ("source",),
}
CONVERSATION_KEYS = ("conversations", "messages")
USER_ROLES = ("human", "user")
ASSISTANT_ROLES = ("gpt", "assistant", "bot", "model")
SYSTEM_ROLES = ("system",)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Deeper lists/objects than this are rejected: real records nest a few levels (a conversation's history
# is three), and anything deep enough to exhaust Python's recursion would crash every later step.
MAX_NESTING = 64
NESTED_TOO_DEEP = f"nested deeper than {MAX_NESTING} levels of lists/objects; flatten it"


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """True if ``value`` nests lists/dicts more than ``limit`` levels (checked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class Rejection:
    """A row that could not be loaded: where it is, why, and the text we saw (shortened)."""

    location: str
    reason: str
    raw: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "reason": self.reason, "raw": self.raw}


@dataclass(frozen=True)
class Duplicate:
    """A row repeating an earlier one exactly, kept (``RowRules.keep_duplicates``) rather than rejected."""

    record: Record
    location: str
    first: str  # where the first copy is


@dataclass
class RowRules:
    max_field_chars: int = 100_000
    # Explicit column mapping: name in the file -> canonical field. Wins over the aliases.
    mapping: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    # Rating a file answers every input row: a repeat is kept (and marked) instead of rejected.
    keep_duplicates: bool = False


class RowError(ValueError):
    """Why one row is not loadable; the message is the reason shown to the user."""


def normalize_rows(
    rows: Iterable[tuple[str, Any]], rules: RowRules
) -> Iterator[Record | Rejection | Duplicate]:
    """Validate located raw rows in order; yield a Record or a Rejection for each, never nothing."""
    seen: dict[str, str] = {}
    for location, raw in rows:
        if isinstance(raw, Rejection):
            yield raw
            continue
        if too_deep(raw):
            yield Rejection(location, NESTED_TOO_DEEP)
            continue
        try:
            candidates = list(_records_from_row(location, raw, rules))
        except RowError as err:
            yield Rejection(location, str(err), _preview(raw))
            continue
        for sub_location, record in candidates:
            first = seen.get(record.id)
            if first is not None and rules.keep_duplicates:
                yield Duplicate(record, sub_location, first)
                continue
            if first is not None:
                yield Rejection(sub_location, f"exact duplicate of {first}", _preview(raw))
                continue
            seen[record.id] = sub_location
            yield record


def _records_from_row(location: str, raw: Any, rules: RowRules) -> Iterator[tuple[str, Record]]:
    if not isinstance(raw, Mapping):
        raise RowError(f"expected an object with instruction and output, got {_type_name(raw)}")
    row = _apply_mapping(raw, rules.mapping)
    conversation_key = next((k for k in CONVERSATION_KEYS if k in row and "instruction" not in row), None)
    if conversation_key:
        yield from _records_from_conversation(location, row, conversation_key, rules)
        return
    yield location, _record_from_fields(row, rules)


def _apply_mapping(raw: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    row = dict(raw)
    for source_name, target in mapping.items():
        if source_name in row:
            row[target] = row.pop(source_name)
    return row


def _record_from_fields(row: Mapping[str, Any], rules: RowRules) -> Record:
    used: set[str] = set()
    values: dict[str, Any] = {}
    for canonical, names in ALIASES.items():
        name = next((n for n in names if n in row), None)
        if name is not None:
            used.add(name)
            values[canonical] = row[name]
    instruction = _text(values.get("instruction"), "instruction", rules, required=True)
    input_text = _text(values.get("input"), "input", rules, required=False)
    output = _text(values.get("output"), "output", rules, required=True)
    category = _optional_label(values.get("category"), "category")
    source = _optional_label(values.get("source"), "source") or rules.source
    meta = _meta(row, used, instruction, input_text, output)
    return Record(instruction, input_text, output, category, source, meta)


def _records_from_conversation(
    location: str, row: Mapping[str, Any], key: str, rules: RowRules
) -> Iterator[tuple[str, Record]]:
    turns = row[key]
    if not isinstance(turns, list) or not turns:
        raise RowError(f"'{key}' must be a non-empty list of messages, got {_type_name(turns)}")
    messages = [_message(i, turn) for i, turn in enumerate(turns)]
    system = row.get("system") if isinstance(row.get("system"), str) else None
    if messages and messages[0][0] in SYSTEM_ROLES:
        system = messages.pop(0)[1]
    exchanges = _pair_exchanges(messages)
    base_meta = {k: v for k, v in row.items() if k not in (key, "system", "id")}
    conversation_id = str(row.get("id", location))
    history: list[list[str]] = []
    for number, (question, answer) in enumerate(exchanges, start=1):
        instruction = _text(question, f"message {2 * number - 1}", rules, required=True)
        output = _text(answer, f"message {2 * number}", rules, required=True)
        meta = dict(base_meta)
        if system:
            meta["system"] = system
        if len(exchanges) > 1:
            meta.update(conversation=conversation_id, turn=number, turns=len(exchanges))
            if history:
                meta["history"] = [list(pair) for pair in history]
        category = _optional_label(meta.pop("category", None), "category")
        source = _optional_label(meta.pop("source", None), "source") or rules.source
        sub_location = location if len(exchanges) == 1 else f"{location} turn {number}"
        yield sub_location, Record(instruction, "", output, category, source, meta)
        history.append((instruction, output))


def _message(index: int, turn: Any) -> tuple[str, Any]:
    if not isinstance(turn, Mapping):
        raise RowError(f"message {index + 1} is {_type_name(turn)}, expected an object with from/value")
    role = turn.get("from", turn.get("role"))
    text = turn.get("value", turn.get("content"))
    if not isinstance(role, str):
        raise RowError(f"message {index + 1} has no 'from' (or 'role') field")
    return role.lower(), text


def _pair_exchanges(messages: list[tuple[str, Any]]) -> list[tuple[Any, Any]]:
    if len(messages) % 2:
        raise RowError(f"conversation has {len(messages)} messages; expected user/assistant pairs")
    exchanges = []
    for i in range(0, len(messages), 2):
        (role_q, question), (role_a, answer) = messages[i], messages[i + 1]
        if role_q not in USER_ROLES or role_a not in ASSISTANT_ROLES:
            raise RowError(
                f"messages {i + 1}-{i + 2} are '{role_q}' then '{role_a}'; expected human/user then gpt/assistant"
            )
        exchanges.append((question, answer))
    return exchanges


def _text(value: Any, name: str, rules: RowRules, required: bool) -> str:
    if value is None:
        if required:
            raise RowError(f"missing {name}")
        return ""
    if not isinstance(value, str):
        raise RowError(f"{name} is {_type_name(value)}, expected a string")
    if required and not value.strip():
        raise RowError(f"empty {name}")
    if len(value) > rules.max_field_chars:
        raise RowError(
            f"{name} has {len(value):,} characters, over the limit of {rules.max_field_chars:,} "
            "(raise validation.max_field_chars to accept it)"
        )
    if _LONE_SURROGATE.search(value):
        raise RowError(f"{name} holds bytes that are not valid UTF-8 (or an unpaired \\u escape); re-save as UTF-8")
    return value


def _optional_label(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"{name} is {_type_name(value)}, expected a string")


def _meta(row: Mapping[str, Any], used: set[str], instruction: str, input_text: str, output: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in row.items():
        if key in used:
            continue
        if key == "meta" and isinstance(value, str):
            meta.update(_decode_meta_column(value))
            continue
        if key == "meta" and isinstance(value, Mapping):
            meta.update(value)
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # empty cells in CSV/Parquet carry nothing
        meta[key] = value
    given_id = meta.pop("id", None)
    if given_id is not None and str(given_id) != record_id(instruction, input_text, output):
        meta["source_id"] = given_id
    return meta


def _decode_meta_column(value: str) -> dict[str, Any]:
    # CSV and Parquet writers put metadata in one JSON column so mixed types survive a round trip.
    if not value:
        return {}
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return {"meta": value}
    except RecursionError as err:
        raise RowError(f"the meta cell is {NESTED_TOO_DEEP}") from err
    if too_deep(decoded):
        raise RowError(f"the meta cell is {NESTED_TOO_DEEP}")
    return decoded if isinstance(decoded, dict) else {"meta": decoded}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _preview(raw: Any, limit: int = 300) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
