"""List/search parameters (RFC 7644 §3.4.2, §3.4.3), from a query string or a SearchRequest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from scim_service.errors import InvalidSyntax, InvalidValue
from scim_service.scim import schema as s
from scim_service.scim.discovery import MAX_RESULTS
from scim_service.scim.filter import Expr, parse_filter

DEFAULT_COUNT = 100


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    filter: Expr | None = None
    start_index: int = 1
    count: int = DEFAULT_COUNT
    sort_by: str | None = None
    descending: bool = False
    attributes: str | list[str] | None = None
    excluded_attributes: str | list[str] | None = None

    @property
    def offset(self) -> int:
        return self.start_index - 1


def _int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidValue(f"{name} must be an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise InvalidValue(f"{name} must be an integer, got {raw!r}")


def build_query(values: Mapping[str, Any]) -> ListQuery:
    """Common validation for both carriers; `values` keys are lower-cased parameter names."""
    raw_filter = values.get("filter")
    expr = None
    if raw_filter is not None:
        if not isinstance(raw_filter, str):
            raise InvalidValue("filter must be a string")
        expr = parse_filter(raw_filter)
    start = _int("startIndex", values["startindex"]) if values.get("startindex") is not None else 1
    count = _int("count", values["count"]) if values.get("count") is not None else DEFAULT_COUNT
    sort_by = values.get("sortby")
    if sort_by is not None and (not isinstance(sort_by, str) or not sort_by.strip()):
        raise InvalidValue("sortBy must be an attribute name")
    order = values.get("sortorder")
    descending = False
    if order is not None:
        if not isinstance(order, str) or order.lower() not in ("ascending", "descending"):
            raise InvalidValue("sortOrder must be 'ascending' or 'descending'")
        descending = order.lower() == "descending"
    return ListQuery(
        filter=expr,
        # RFC 7644 §3.4.2.4: startIndex < 1 is 1; a negative count is 0; count is capped.
        start_index=max(1, start),
        count=min(max(0, count), MAX_RESULTS),
        sort_by=sort_by,
        descending=descending,
        attributes=values.get("attributes"),
        excluded_attributes=values.get("excludedattributes"),
    )


def query_from_params(params: Mapping[str, str]) -> ListQuery:
    return build_query({k.lower(): v for k, v in params.items()})


def query_from_search_body(body: Any) -> ListQuery:
    """POST .search (RFC 7644 §3.4.3): a SearchRequest object."""
    if not isinstance(body, dict):
        raise InvalidSyntax("The search request must be a JSON object")
    lowered = {str(k).lower(): v for k, v in body.items()}
    schemas = lowered.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or s.SEARCH_REQUEST not in schemas):
        raise InvalidValue(f"schemas must contain {s.SEARCH_REQUEST}")
    for key in ("attributes", "excludedattributes"):
        v = lowered.get(key)
        if (
            v is not None
            and not (isinstance(v, list) and all(isinstance(i, str) for i in v))
            and not isinstance(v, str)
        ):
            raise InvalidValue(f"{key} must be an array of attribute names")
    return build_query(lowered)


def list_response(total: int, start_index: int, resources: list[Any]) -> dict[str, Any]:
    return {
        "schemas": [s.LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
