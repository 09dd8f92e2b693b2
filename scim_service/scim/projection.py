"""`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on an output resource.

Names are case-insensitive and may be sub-attributes (`name.givenName`, `emails.value`),
URN-qualified (`urn:...:enterprise:2.0:User:department`) or whole extension URNs. Attributes
whose `returned` is "always" (`id`) and `schemas` survive every projection; unknown names are
ignored.

A multi-valued complex attribute may carry a value filter, as Microsoft's SCIM reference
collection sends (`attributes=emails[type eq "work"]`, `emails[type eq "work"].value`,
`excludedAttributes=emails[primary eq true]`): the attribute keeps (or loses) exactly the
elements the filter matches, with the filter grammar of RFC 7644 §3.4.2.2 (a value path, as in
a PATCH path §3.5.2). RFC 7644 §3.10 only names attributes; this is an extension that answers
what such a client means rather than dropping the attribute. A filter that does not parse, or
names a sub-attribute the attribute lacks, is 400 `invalidFilter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidFilter, InvalidPath, InvalidValue
from scim_service.scim import schema as s
from scim_service.scim.evaluate import check_element, matches_element
from scim_service.scim.filter import Expr, parse_patch_path

ALWAYS = frozenset(("schemas", "id"))


@dataclass(frozen=True, slots=True)
class Selector:
    container: str | None  # None = core (top level), else the extension URN
    attr: str | None  # None = the whole extension
    sub: str | None = None
    filter: Expr | None = None  # only the elements of a multi-valued attribute it matches
    parent: s.Attr | None = None  # the attribute's definition (set with a filter)

    def matches(self, element: Any) -> bool:
        if self.filter is None:
            return True
        assert self.parent is not None
        return isinstance(element, dict) and matches_element(self.parent, self.filter, element)


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
            sel.container is None and sel.attr == attr and sel.sub is None and sel.filter is None
            for sel in self.exclude
        )


def split_names(raw: str | list[str] | None) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidValue("attributes and excludedAttributes must be strings")
        out.extend(part.strip() for part in _split(item) if part.strip())
    return out


def _split(text: str) -> list[str]:
    """Split at commas outside `[...]` and outside quoted strings (a value filter may hold
    both: `emails[value eq "a,b"]`)."""
    parts: list[str] = []
    start = depth = 0
    quoted = escaped = False
    for i, ch in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _filtered_selector(rtype: s.ResourceType, name: str) -> Selector | None:
    """`attr[filter]` or `attr[filter].sub` (URN-qualified or not)."""
    try:
        pp = parse_patch_path(name)
    except InvalidPath as exc:
        raise InvalidFilter(f"attributes {name!r}: {exc.detail}") from None
    head = pp.path
    found = s.resolve(rtype, f"{head.urn}:{head.attr}" if head.urn else head.attr)
    if found is None:
        return None  # an unknown attribute, as without a filter: ignored
    schema, attr = found
    if not (attr.multi_valued and attr.type == "complex"):
        raise InvalidFilter(f"attributes {name!r}: {attr.name} is not multi-valued")
    assert pp.filter is not None
    check_element(attr, pp.filter, InvalidFilter)
    sub_name = None
    if pp.sub is not None:
        sub_attr = attr.sub(pp.sub)
        if sub_attr is None:
            return None
        sub_name = sub_attr.name
    container = None if schema is rtype.schema else schema.id
    return Selector(container, attr.name, sub_name, pp.filter, attr)


def _selector(rtype: s.ResourceType, name: str) -> Selector | None:
    if "[" in name:
        return _filtered_selector(rtype, name)
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


def _included(value: Any, selectors: list[Selector]) -> Any:
    """What the include selectors of one attribute keep of its value (None: nothing). A list
    keeps, per element, the sub-attributes of every selector whose filter matches it (all of
    them for a selector without a sub-attribute), in the element's own key order."""
    if any(sel.sub is None and sel.filter is None for sel in selectors):
        return _copy(value)
    if isinstance(value, list):
        kept = []
        for element in value:
            if not isinstance(element, dict):
                continue
            wanted = [sel for sel in selectors if sel.matches(element)]
            if not wanted:
                continue
            if any(sel.sub is None for sel in wanted):
                kept.append(_copy(element))
                continue
            subs = {sel.sub for sel in wanted}
            picked = {k: _copy(v) for k, v in element.items() if k in subs}
            if picked:
                kept.append(picked)
        return kept or None
    if isinstance(value, dict):
        subs = {sel.sub for sel in selectors if sel.filter is None}
        picked = {k: _copy(v) for k, v in value.items() if k in subs}
        return picked or None
    return None


def apply_projection(resource: dict[str, Any], projection: Projection) -> dict[str, Any]:
    if projection.is_identity:
        return resource
    if projection.include:
        out: dict[str, Any] = {k: resource[k] for k in resource if k in ALWAYS}
        by_attr: dict[tuple[str | None, str], list[Selector]] = {}
        for sel in projection.include:
            source = resource if sel.container is None else resource.get(sel.container)
            if not isinstance(source, dict):
                continue
            if sel.attr is None:
                out[sel.container] = source  # type: ignore[index]
                continue
            by_attr.setdefault((sel.container, sel.attr), []).append(sel)
        for (container, attr), selectors in by_attr.items():
            source = resource if container is None else resource[container]
            if attr not in source:
                continue
            value = _included(source[attr], selectors)
            if value is None:
                continue
            if container is None:
                out[attr] = value
            elif isinstance(out.get(container), dict) and out[container] is resource[container]:
                continue  # the whole extension is already in
            else:
                holder = out.setdefault(container, {})
                holder[attr] = value
        for container in {sel.container for sel in projection.include if sel.container}:
            # Keep the extension's own key order.
            if isinstance(out.get(container), dict) and out[container] is not resource[container]:
                out[container] = {
                    k: out[container][k] for k in resource[container] if k in out[container]
                }
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
        elif sel.filter is not None:
            if isinstance(target.get(sel.attr), list):
                target[sel.attr] = _drop_matching(target[sel.attr], sel)
                if not target[sel.attr]:
                    del target[sel.attr]
        elif sel.sub is None:
            target.pop(sel.attr, None)
        elif sel.attr in target:
            target[sel.attr] = _drop_sub(target[sel.attr], sel.sub)
            if not target[sel.attr]:
                del target[sel.attr]
        if sel.container is not None and not out.get(sel.container):
            out.pop(sel.container, None)
    return out


def _drop_matching(items: list[Any], sel: Selector) -> list[Any]:
    """The elements without those the selector's filter matches (or, with a sub-attribute,
    without that sub-attribute in them)."""
    out = []
    for item in items:
        if not sel.matches(item):
            out.append(item)
        elif sel.sub is not None:
            rest = {k: v for k, v in item.items() if k != sel.sub}
            if rest:
                out.append(rest)
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
