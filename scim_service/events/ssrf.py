"""No server-side request forgery through a webhook endpoint URL (issue 26).

An endpoint URL is checked when it is created or changed (`check_url`: a literal address, or
every address its name resolves to now) and again at each delivery: `GuardedResolver` is the
delivery connection's resolver, so the address actually connected to is the one checked (no
window between a check and a second lookup). Loopback, link-local (cloud metadata at
169.254.169.254), private, unique-local, multicast, reserved and unspecified addresses are
refused unless `SCIM_WEBHOOK_ALLOWED_NETWORKS` names a network holding them. Redirects are
never followed (events/sinks/webhook.py). A refusal names the kind of address, never the URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(OSError):
    """The URL's host is, or resolves to, an address an endpoint may not reach."""

    permanent = True  # the webhook sink dead-letters at once (not worth retrying)


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _kind(addr: Address) -> str | None:
    """Why an address is refused by default, or None when it is a public one."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_private or addr.is_reserved or not addr.is_global:
        return "private"
    return None


def refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """The reason `address` may not be reached, or None."""
    addr = ipaddress.ip_address(address.split("%", 1)[0])
    kind = _kind(addr)
    if kind is None or any(addr in net for net in allowed):
        return None
    return (
        f"address refused: the endpoint's host is a {kind} address"
        " (not in SCIM_WEBHOOK_ALLOWED_NETWORKS)"
    )


def parse_url(url: str) -> URL:
    """An absolute http(s) URL without credentials, or ValueError."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise ValueError("'url' is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("'url' must be an absolute http:// or https:// URL")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError("'url' must not carry credentials (user:password@)")
    return parsed


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def check_url(url: str, allowed: Sequence[Network]) -> None:
    """ValueError when `url` is malformed or its host is (or now resolves to) a refused
    address. A name that does not resolve now is accepted (it is checked at each delivery)."""
    parsed = parse_url(url)
    host = parsed.host or ""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parsed.port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            raise ValueError(reason.replace("address refused: ", "'url' refused: "))


def check_host(url: URL, allowed: Sequence[Network]) -> str | None:
    """At delivery, for a host written as an address (the resolver is not asked for those)."""
    literal = _literal(url.host or "")
    return refusal(literal, allowed) if literal is not None else None


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing every answer that holds a refused address."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = tuple(allowed)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for item in found:
            reason = refusal(str(item["host"]), self._allowed)
            if reason is not None:
                raise Refused(reason)
        return found

    async def close(self) -> None:
        await self._inner.close()
