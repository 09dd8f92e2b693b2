"""Normalising client input into the stored representation of a resource.

The stored representation ("attrs") is what the client may set: core attributes at the top
level under the schema's spelling, extension attributes in a dict under the extension URN.
Server-owned attributes (id, meta, groups, setupState) and the password are never in it.

Rules (RFC 7643 §2): attribute names are case-insensitive on input; null means unassigned;
unknown core attributes and unknown extension URNs are ignored (Entra adds its own);
readOnly attributes in a request are ignored; a value of the wrong type is a 400
`invalidValue` whose detail names the attribute path. Entra's "True"/"False" strings are
accepted for booleans.
"""

from __future__ import annotations

import re
from typing import Any

from scim_service.errors import InvalidValue
from scim_service.scim import schema as s
from scim_service.scim.evaluate import parse_datetime
from scim_service.scim.limits import check_object, check_values

# Longest string accepted in an indexed column (userName, externalId, displayName, email
# values): far below PostgreSQL's btree row limit. Any other string: MAX_STRING.
MAX_INDEXED = 1024
MAX_STRING = 65536
_INDEXED = frozenset(("userName", "externalId", "displayName"))
_INDEX_RE = re.compile(r"\[\d+\]")

# Attributes a client never sets, whatever it sends.
SERVER_OWNED = frozenset(("id", "meta", "schemas"))


def _invalid(path: str, message: str) -> InvalidValue:
    return InvalidValue(f"{path}: {message}")


def coerce_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(path, f"expected a boolean, got {_type_name(value)}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string(value: Any, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _invalid(path, f"expected a string, got {_type_name(value)}")
    if "\x00" in value:
        raise _invalid(path, "NUL characters are not allowed")
    if len(value) > limit:
        raise _invalid(path, f"longer than {limit} characters")
    return value


def normalize_scalar(attr: s.Attr, value: Any, path: str) -> Any:
    """One singular, non-complex value of `attr` (never None: callers drop nulls first)."""
    if attr.type == "boolean":
        return coerce_bool(value, path)
    if attr.type in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(path, f"expected a number, got {_type_name(value)}")
        if attr.type == "integer" and isinstance(value, float) and not value.is_integer():
            raise _invalid(path, "expected an integer")
        return int(value) if attr.type == "integer" else value
    if attr.type == "dateTime":
        text = _string(value, path, 64)
        if parse_datetime(text) is None:
            raise _invalid(path, "expected an RFC 3339 date-time")
        return text
    indexed = attr.name in _INDEXED or _INDEX_RE.sub("", path) == "emails.value"
    limit = MAX_INDEXED if indexed else MAX_STRING
    return _string(value, path, limit)


def normalize_complex(attr: s.Attr, value: Any, path: str) -> dict[str, Any] | None:
    """A complex value: canonical sub-attribute names, typed, readOnly/unknown ones dropped."""
    if isinstance(value, str) and not attr.multi_valued and attr.sub("value") is not None:
        # Entra sends the enterprise `manager` as a bare id string: it means {"value": id}.
        value = {"value": value}
    if not isinstance(value, dict):
        raise _invalid(path, f"expected an object, got {_type_name(value)}")
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if not isinstance(key, str):
            continue
        sub = attr.sub(key)
        if sub is None or sub.read_only or raw is None or raw == "":
            continue
        out[sub.name] = normalize_scalar(sub, raw, f"{path}.{sub.name}")
    return out or None


def normalize_value(attr: s.Attr, value: Any, path: str) -> Any:
    """A whole attribute value (singular or multi-valued); None when it ends up unassigned.

    An empty string counts as unassigned, like null (RFC 7643 §2.5 treats unassigned, null
    and empty arrays alike; IdPs clear attributes with ""), so `pr` never sees "".
    """
    if value is None or value == "":
        return None
    if attr.multi_valued:
        if not isinstance(value, list):
            raise _invalid(path, f"expected an array, got {_type_name(value)}")
        check_values(path, len(value), members=attr.name == "members")
        items: list[Any] = []
        for i, item in enumerate(value):
            if item is None or item == "":
                continue
            if attr.type == "complex":
                norm = normalize_complex(attr, item, f"{path}[{i}]")
                if norm is not None:
                    items.append(norm)
            else:
                items.append(normalize_scalar(attr, item, f"{path}[{i}]"))
        if attr.type == "complex" and sum(1 for i in items if i.get("primary") is True) > 1:
            raise _invalid(path, "at most one value may have primary set to true")
        return items or None
    if attr.type == "complex":
        return normalize_complex(attr, value, path)
    return normalize_scalar(attr, value, path)


def _put(out: dict[str, Any], ext: str | None, name: str, value: Any) -> None:
    target = out if ext is None else out.setdefault(ext, {})
    if value is None:
        target.pop(name, None)
    else:
        target[name] = value


def normalize_resource(rtype: s.ResourceType, body: Any) -> dict[str, Any]:
    """A POST/PUT body → stored attrs. Required attributes are checked by `check_required`."""
    if not isinstance(body, dict):
        raise InvalidValue(f"The request body must be a JSON object, got {_type_name(body)}")
    check_object("The resource", body)
    out: dict[str, Any] = {}
    for key, raw in body.items():
        if not isinstance(key, str) or key.lower() in SERVER_OWNED:
            continue
        ext = rtype.extension(key)
        if ext is not None:
            if raw is None:
                continue
            if not isinstance(raw, dict):
                raise _invalid(ext.id, f"expected an object, got {_type_name(raw)}")
            check_object(ext.id, raw)
            for sub_key, sub_raw in raw.items():
                if not isinstance(sub_key, str):
                    continue
                attr = ext.attr(sub_key)
                if attr is None or attr.read_only:
                    continue
                _put(
                    out, ext.id, attr.name, normalize_value(attr, sub_raw, f"{ext.id}:{attr.name}")
                )
            continue
        found = s.resolve(rtype, key)
        if found is None:
            continue  # unknown attribute or unknown extension URN: tolerated
        schema, attr = found
        if attr.read_only or attr.mutability == "writeOnly" or attr.name in ("id", "meta"):
            continue  # readOnly ignored; the password is accepted and discarded
        ext_id = None if schema is rtype.schema else schema.id
        path = attr.name if ext_id is None else f"{ext_id}:{attr.name}"
        _put(out, ext_id, attr.name, normalize_value(attr, raw, path))
    for urn in [k for k, v in out.items() if k.startswith("urn:") and not v]:
        del out[urn]
    return out


def check_required(rtype: s.ResourceType, attrs: dict[str, Any]) -> None:
    for attr in rtype.schema.attributes:
        if attr.required:
            value = attrs.get(attr.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InvalidValue(f"{attr.name} is required")


def body_id_of(body: Any) -> Any:
    """The `id` a PUT body carries (any spelling), or None; it must match the URL."""
    if isinstance(body, dict):
        for key, value in body.items():
            if isinstance(key, str) and key.lower() == "id":
                return value
    return None
