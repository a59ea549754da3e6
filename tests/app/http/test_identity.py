"""Who a client is, for its rate-limit budget: its address, or a header's value."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.http.identity import ClientIdentity, IdentitySource, identify
from app.settings import SettingsError


def request(headers: dict[str, str] | None = None, client: tuple[str, int] | None = None):
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
    }
    return Request(scope)


def test_by_default_a_client_is_its_address():
    source = IdentitySource.parse("address")
    identity = identify(request({"X-API-Key": "k"}, ("192.0.2.7", 5000)), source)
    assert identity == ClientIdentity("address", "192.0.2.7")
    assert identity.key == "address:192.0.2.7"


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_is_its_64_network(host, network):
    identity = identify(request(client=(host, 1)), IdentitySource())
    assert identity.value == network


def test_a_request_without_a_peer_is_one_unknown_client():
    assert identify(request(), IdentitySource()).value == "unknown"


def test_by_header_a_client_is_its_key_never_stored_in_clear():
    source = IdentitySource.parse("header:X-API-Key")
    one = identify(request({"X-API-Key": "secret-1"}, ("192.0.2.7", 1)), source)
    same = identify(request({"x-api-key": "secret-1"}, ("198.51.100.1", 2)), source)
    other = identify(request({"X-API-Key": "secret-2"}, ("192.0.2.7", 1)), source)
    assert one == same  # the same key from anywhere
    assert one.kind == "header" and "secret" not in one.key
    assert other != one


def test_by_header_a_request_without_the_header_is_its_address():
    source = IdentitySource.parse("header:X-API-Key")
    identity = identify(request({"Authorization": "x"}, ("192.0.2.7", 1)), source)
    assert identity == ClientIdentity("address", "192.0.2.7")


@pytest.mark.parametrize("raw", ["", "ip", "header:", "header:X API", "cookie:session"])
def test_an_unknown_source_names_its_variable(raw):
    with pytest.raises(SettingsError, match="BATCHERY_RATE_LIMIT_KEY must be `address`"):
        IdentitySource.parse(raw)
