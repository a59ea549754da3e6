"""Who is calling: the one identity that rate limits key on, the caller authentication found first.

`BATCHERY_RATE_LIMIT_KEY` chooses the source:

- `address` (default): the peer address of the connection as uvicorn reports it. Behind a reverse
  proxy that is the proxy's address, unless uvicorn is told to trust the proxy's
  `X-Forwarded-For` (`FORWARDED_ALLOW_IPS=<proxy address>`, uvicorn's own setting; it trusts
  127.0.0.1 by default). The header is never read here: trusting it is the server's decision,
  made once, not each feature's. An IPv6 client counts as its /64 network.
- `header:<Name>`: the value of that request header (an API key, say). A request without it
  falls back to its address, so a client cannot escape its budget by leaving the header out.
  The value is hashed: keys never reach the rate-limit storage (Redis) in clear.

A request authenticated with an API key (app/http/access.py) is that key, whatever the source
says: `caller:key:<id>`; one with a JWT is its subject, `caller:jwt:<sub>`. The header and the
address are for requests without a credential (open mode). A request with a wrong key or token
never gets here: it was refused with 401 before any endpoint.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from app.http.access import caller_of
from app.settings import PREFIX, SettingsError

SETTING = PREFIX + "RATE_LIMIT_KEY"
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True, slots=True)
class IdentitySource:
    """Where the identity comes from: a header's value (`header` set), else the address."""

    header: str | None = None

    @classmethod
    def parse(cls, raw: str) -> IdentitySource:
        value = raw.strip()
        if value == "address":
            return cls()
        kind, _, name = value.partition(":")
        name = name.strip()
        if kind.strip() == "header" and name and name.isascii() and " " not in name:
            return cls(header=name.lower())
        raise SettingsError(
            f"{SETTING} must be `address` or `header:<Header-Name>` (e.g. header:X-API-Key), "
            f"got {raw!r}"
        )


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    kind: str  # "caller" (an API key), "header" or "address"
    value: str

    @property
    def key(self) -> str:
        """The storage key: short, stable, and free of the secret a header may carry."""
        return f"{self.kind}:{self.value}"


def identify(connection: HTTPConnection, source: IdentitySource) -> ClientIdentity:
    caller = caller_of(connection)
    if caller.authenticated:
        return ClientIdentity("caller", caller.id)
    if source.header is not None:
        presented = connection.headers.get(source.header)
        if presented:
            digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()
            return ClientIdentity("header", digest[:32])
    client = connection.client
    return ClientIdentity("address", client_network(client.host if client else UNKNOWN_ADDRESS))


def client_network(host: str) -> str:
    """An IPv4 address as it is; an IPv6 address as its /64, the block one site gets: a client
    holds a whole /64 and could otherwise take a new address, and a new budget, per request."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a Unix socket path, or a test client's name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
