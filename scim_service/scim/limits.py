"""Bounds on the CPU work one request can ask for (issue 12: one organization cannot stall the
process for every other one).

Everything here is checked before the work it bounds and before any write, and answers a 400
whose detail names the limit and its value. The figures come from measurements on the 2-core
CI machines (Python 3.11), per unit of work:

- normalising a stored value (POST/PUT, and the result of every PATCH): about 2 µs per element
  of a multi-valued attribute, 1 µs per member of an object;
- one PATCH operation (path parse, target resolution, copy): about 24 µs;
- scanning one element of the targeted attribute with a value filter term: about 1.2 µs.

So a user holds at most MAX_VALUES values per multi-valued attribute (the 4,000-email user of
the issue cannot be stored: 8 ms to normalise, and every PATCH rescanning them), a PATCH has at
most MAX_OPERATIONS operations (path-less add/replace count each attribute they set) and at most
MAX_PATCH_WORK units of "operations x elements x filter terms". The worst allowed PATCH is then
about 25 ms of CPU here, and it is evaluated off the event loop (`asyncio.to_thread`) once its
estimate exceeds OFFLOAD_PATCH_COST, so the loop is never held for its whole duration.
"""

from __future__ import annotations

import re
from typing import Any

from scim_service.errors import InvalidValue, TooMany

# Values of one multi-valued attribute of a resource (emails, phoneNumbers, addresses, ims,
# photos, entitlements, roles, x509Certificates). Group `members` have their own limit.
MAX_VALUES = 100
# Member ids in one request (a group POST/PUT body, or all member operations of one PATCH).
# Memberships are applied set-based in SQL, so this bounds the request's size, not a scan.
MAX_MEMBERS_PER_REQUEST = 10_000
# Members of one JSON object the service interprets (a resource body, an extension object, the
# value of a path-less PATCH operation). Unknown members are ignored but still looked at.
MAX_OBJECT_MEMBERS = 1_000
# PATCH operations in one request, path-less add/replace counting each attribute they set.
MAX_OPERATIONS = 1_000
# operations x elements of the multi-valued attribute each one targets x its filter terms.
MAX_PATCH_WORK = 20_000
# Above this cost (work + OPERATION_COST per operation, about 1 µs each) a PATCH is evaluated in
# a worker thread: the interpreter hands the GIL back to the event loop every few milliseconds
# (sys.getswitchinterval), so other requests keep being served meanwhile.
OPERATION_COST = 20
OFFLOAD_PATCH_COST = 2_000

_FILTER_TERM_RE = re.compile(r"\s(?:and|or)\s", re.IGNORECASE)


def check_values(label: str, count: int, *, members: bool = False) -> None:
    """A multi-valued attribute (or a group's members) holding more values than allowed."""
    limit = MAX_MEMBERS_PER_REQUEST if members else MAX_VALUES
    if count > limit:
        what = "members in one request" if members else f"values of {label}"
        raise InvalidValue(f"{label}: {count} values; at most {limit} {what} are accepted")


def check_object(label: str, obj: dict[Any, Any]) -> None:
    if len(obj) > MAX_OBJECT_MEMBERS:
        raise InvalidValue(
            f"{label}: {len(obj)} attributes; "
            f"at most {MAX_OBJECT_MEMBERS} are accepted in one object"
        )


def check_operations(count: int) -> None:
    if count > MAX_OPERATIONS:
        raise InvalidValue(
            f"{count} operations; at most {MAX_OPERATIONS} are accepted in one PATCH "
            "(a path-less add or replace counts each attribute it sets)"
        )


def _attribute_name(path: str) -> str:
    """The attribute a PATCH path starts at, lower-cased: `emails[type eq "work"].value` →
    `emails`, `urn:...:User:manager.value` → `manager`. An estimate: no validation here."""
    head = path.split("[", 1)[0]
    if ":" in head:
        head = head.rsplit(":", 1)[1]
    return head.split(".", 1)[0].strip().lower()


def _filter_terms(path: str) -> int:
    start = path.find("[")
    if start < 0:
        return 1
    end = path.rfind("]")
    return 1 + len(_FILTER_TERM_RE.findall(path, start, end if end > start else len(path)))


def _sizes(attrs: dict[str, Any]) -> dict[str, int]:
    """Lower-cased attribute name → number of values, for every list in attrs (core and
    extensions)."""
    out: dict[str, int] = {}
    for key, value in attrs.items():
        if isinstance(value, list):
            out[key.lower()] = len(value)
        elif isinstance(value, dict) and key.startswith("urn:"):
            for sub_key, sub_value in value.items():
                if isinstance(sub_value, list):
                    out[sub_key.lower()] = len(sub_value)
    return out


def offload_patch(operations: int, work: int) -> bool:
    """Whether a PATCH of this size is worth a worker thread (a hop costs about 0.1 ms)."""
    return work + OPERATION_COST * operations > OFFLOAD_PATCH_COST


def patch_work(attrs: dict[str, Any], operations: list[tuple[str | None, Any]]) -> int:
    """Estimate the work of PATCH operations `(path, value)` on stored `attrs` and raise a 400
    `tooMany` above MAX_PATCH_WORK. Cheap (no path parsing): O(operations + attributes)."""
    sizes = _sizes(attrs)
    work = 0
    for path, value in operations:
        if path is None:
            if isinstance(value, dict):
                for key, raw in value.items():
                    name = _attribute_name(key) if isinstance(key, str) else ""
                    extra = len(raw) if isinstance(raw, list) else 0
                    work += max(1, (sizes.get(name, 0) + extra) * _filter_terms(str(key)))
            else:
                work += 1
            continue
        extra = len(value) if isinstance(value, list) else 0
        elements = sizes.get(_attribute_name(path), 0) + extra
        work += max(1, elements * _filter_terms(path))
    if work > MAX_PATCH_WORK:
        raise TooMany(
            f"This PATCH asks for about {work} units of work (operations x values of the "
            f"attribute each one targets x filter terms); at most {MAX_PATCH_WORK} are accepted: "
            "split it into several requests"
        )
    return work
