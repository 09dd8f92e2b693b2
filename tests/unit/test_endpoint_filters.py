"""Webhook endpoints (issue 26) without a database: SSRF address rules, filters, secrets."""

from __future__ import annotations

import uuid

import pytest
from standardwebhooks import Webhook

from scim_service.events import ssrf
from scim_service.events.endpoints import endpoint_secret, selects
from scim_service.signing import Signer
from scim_service.store.endpoints import Event


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
    ],
)
def test_forbidden_addresses_are_refused_unless_allowed(address: str) -> None:
    assert ssrf.refusal(address, ()) is not None
    allowed = ssrf.networks(["0.0.0.0/0", "::/0"])
    assert ssrf.refusal(address, allowed) is None


def test_public_addresses_pass() -> None:
    assert ssrf.refusal("93.184.216.34", ()) is None
    assert ssrf.refusal("2606:2800:220:1:248:1893:25c8:1946", ()) is None


def _event(type_: str, org: uuid.UUID) -> Event:
    return Event(
        seq=1,
        id=uuid.uuid4(),
        subject=uuid.uuid4(),
        version=1,
        payload=b"{}",
        org_id=org,
        type=type_,
    )


def test_filters_select_types_prefixes_and_organizations() -> None:
    x, y = uuid.uuid4(), uuid.uuid4()
    assert selects(None, None, _event("group.changed", x))
    assert selects(("user.*",), None, _event("user.updated", x))
    assert not selects(("user.*",), None, _event("group.changed", x))
    assert selects(("group.changed",), frozenset({x}), _event("group.changed", x))
    assert not selects(None, frozenset({x}), _event("user.updated", y))


def test_each_endpoint_has_its_own_verifiable_secret() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    sa, sb = endpoint_secret("k" * 40, a), endpoint_secret("k" * 40, b)
    assert sa != sb and sa == endpoint_secret("k" * 40, a) and sa.startswith("whsec_")
    headers = Signer([sa]).headers("msg_1", b'{"x": 1}')
    assert Webhook(sa).verify(b'{"x": 1}', headers) == {"x": 1}
