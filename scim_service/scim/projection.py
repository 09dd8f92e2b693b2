"""`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on an output resource.

Names are case-insensitive and may be sub-attributes (`name.givenName`, `emails.value`),
URN-qualified (`urn:...:enterprise:2.0:User:department`) or whole extension URNs. Attributes
whose `returned` is "always" (`id`) and `schemas` survive every projection; unknown names are
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidValue
from scim_service.scim import schema as s

ALWAYS = frozenset(("schemas", "id"))


@dataclass(frozen=True, slots=True)
class Selector:
    container: str | None  # None = core (top level), else the extension URN
    attr: str | None  # None = the whole extension
    sub: str | None = None


@dataclass(frozen=True, slots=True)
class Projection:
    include: tuple[Selector, ...] = ()
    exclude: tuple[Selector, ...] = ()

    @property
    def is_identity(self) -> bool:
        return not self.include and not self.exclude

    def excludes(self, attr: str) -> bool:
        """True when the top-level core attribute `attr` will not be in the output, so its data
        need not be read at all (e.g. a group's `members`)."""
        if self.include:
            return not any(sel.container is None and sel.attr == attr for sel in self.include)
        return any(
            sel.container is None and sel.attr == attr and sel.sub is None for sel in self.exclude
        )


def split_names(raw: str | list[str] | None) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidValue("attributes and excludedAttributes must be strings")
        out.extend(part.strip() for part in item.split(",") if part.strip())
    return out


def _selector(rtype: s.ResourceType, name: str) -> Selector | None:
    ext = rtype.extension(name)
    if ext is not None:
        return Selector(ext.id, None)
    head, _, sub = name.partition(".")
    if ":" in head:  # URN-qualified; the sub-attribute dot is after the last colon
        urn_part, _, attr_part = name.rpartition(":")
        head, _, sub = attr_part.partition(".")
        found = s.resolve(rtype, f"{urn_part}:{head}")
    else:
        found = s.resolve(rtype, head)
    if found is None:
        return None
    schema, attr = found
    container = None if schema is rtype.schema else schema.id
    sub_name = None
    if sub:
        sub_attr = attr.sub(sub)
        if sub_attr is None:
            return None
        sub_name = sub_attr.name
    return Selector(container, attr.name, sub_name)


def parse_projection(
    rtype: s.ResourceType, attributes: str | list[str] | None, excluded: str | list[str] | None
) -> Projection:
    include = tuple(x for x in (_selector(rtype, n) for n in split_names(attributes)) if x)
    exclude = tuple(x for x in (_selector(rtype, n) for n in split_names(excluded)) if x)
    if split_names(attributes):
        # RFC 7644 §3.9: the two parameters are mutually exclusive; `attributes` wins.
        return Projection(include=include or (Selector(None, "id"),))
    return Projection(exclude=exclude)


def _pick_sub(value: Any, sub: str) -> Any:
    if isinstance(value, list):
        picked = [{sub: v[sub]} for v in value if isinstance(v, dict) and sub in v]
        return picked or None
    if isinstance(value, dict) and sub in value:
        return {sub: value[sub]}
    return None


def _merge(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        return
    have = target.get(key)
    if isinstance(have, dict) and isinstance(value, dict):
        have.update(value)
    elif isinstance(have, list) and isinstance(value, list):
        for i, item in enumerate(value):
            if i < len(have) and isinstance(have[i], dict):
                have[i].update(item)
            else:
                have.append(item)
    else:
        target[key] = value


def apply_projection(resource: dict[str, Any], projection: Projection) -> dict[str, Any]:
    if projection.is_identity:
        return resource
    if projection.include:
        out: dict[str, Any] = {k: resource[k] for k in resource if k in ALWAYS}
        for sel in projection.include:
            source = resource if sel.container is None else resource.get(sel.container)
            if not isinstance(source, dict):
                continue
            if sel.attr is None:
                out[sel.container] = source  # type: ignore[index]
                continue
            if sel.attr not in source:
                continue
            value = source[sel.attr] if sel.sub is None else _pick_sub(source[sel.attr], sel.sub)
            if value is None:
                continue
            if sel.container is None:
                _merge(out, sel.attr, _copy(value))
            else:
                _merge(out.setdefault(sel.container, {}), sel.attr, _copy(value))
        # Keep the resource's own key order.
        return {k: out[k] for k in resource if k in out}
    out = dict(resource)
    for sel in projection.exclude:
        if sel.container is None and sel.attr in ALWAYS:
            continue
        found = out if sel.container is None else out.get(sel.container)
        if not isinstance(found, dict):
            continue
        target: dict[str, Any] = found
        if sel.container is not None and target is resource.get(sel.container):
            target = dict(target)  # copy before changing: `resource` is not ours to mutate
            out[sel.container] = target
        if sel.attr is None:
            out.pop(sel.container, None)  # type: ignore[arg-type]
        elif sel.sub is None:
            target.pop(sel.attr, None)
        elif sel.attr in target:
            target[sel.attr] = _drop_sub(target[sel.attr], sel.sub)
            if not target[sel.attr]:
                del target[sel.attr]
        if sel.container is not None and not out.get(sel.container):
            out.pop(sel.container, None)
    return out


def _drop_sub(value: Any, sub: str) -> Any:
    if isinstance(value, list):
        items = [
            {k: v for k, v in item.items() if k != sub} for item in value if isinstance(item, dict)
        ]
        return [i for i in items if i]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != sub}
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
