"""PATCH evaluation with bounded work (issue 12): checked first, large ones off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from scim_service.scim import schema as s
from scim_service.scim.limits import offload_patch, patch_work
from scim_service.scim.patch import Operation, apply_operations


async def evaluate_patch(
    rtype: s.ResourceType, attrs: dict[str, Any], operations: Sequence[Operation]
) -> dict[str, Any]:
    """The new attrs. The work is estimated first (400 tooMany above the limit, before anything
    is evaluated or written); a large PATCH runs in a worker thread, so the event loop keeps
    serving other requests while it is evaluated (apply_operations is pure: it works on a
    copy of `attrs`)."""
    work = patch_work(attrs, [(o.path, o.value) for o in operations])
    if offload_patch(len(operations), work):
        return await asyncio.to_thread(apply_operations, rtype, attrs, operations)
    return apply_operations(rtype, attrs, operations)
