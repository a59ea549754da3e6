"""The identity provider's public keys: a JWKS from a URL or a file, or one PEM key.

A JWKS URL is fetched in a thread (urllib is blocking; the event loop never waits on the
network), with a size limit and a deadline on the whole fetch (`BATCHERY_JWT_JWKS_TIMEOUT_SECONDS`:
a per-read timeout alone lets a provider dripping its answer hold the requests waiting for it for
as long as it likes), and its keys are kept `cache_seconds`; once they
expire, they keep answering while the set is refetched in the background. A token naming a
key id the set lacks triggers a refetch (the provider rotated its keys), but at most once per
`min_refresh_seconds` whatever the tokens say: a flood of made-up key ids costs the provider one
request per interval, not one per token. Concurrent requests that need a fetch share one. When a
fetch fails, the keys already held stay in use; with none held, the token cannot be checked
(`KeysUnavailable`: a 503, not a 401, since the token may well be good).

A JWKS file is the same set read from disk (read at start, so a bad file stops the start, and
reread on the same schedule, so rotating it needs no restart). Only public signing keys are
kept: `oct` (symmetric) keys and keys marked `"use": "enc"` are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jwt import PyJWK
from jwt.exceptions import PyJWTError

logger = logging.getLogger("batchery.jwt")

# A real key set is a few kilobytes; anything past this is not one.
MAX_JWKS_BYTES = 1024 * 1024
# Key ids are echoed in messages: long ones are cut.
SHOWN_CHARS = 80


class UnknownKey(Exception):
    """The token names a key (or an algorithm for it) the key set does not have: a 401."""


class KeysUnavailable(Exception):
    """No key set could be read: the token cannot be checked now (a 503, with Retry-After)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeySet(Protocol):
    description: str

    async def key(self, kid: str | None, alg: str) -> PyJWK: ...


def shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


def parse_jwks(raw: bytes, where: str) -> dict[str, dict[str, Any]]:
    """`{kid: jwk}` of the signing keys in a JWKS document (a key without kid is kept as "")."""
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise KeysUnavailable(f"{where} is not JSON ({error})") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise KeysUnavailable(f'{where} is not a JWKS (a JSON object with a "keys" list)')
    found: dict[str, dict[str, Any]] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kty") in (None, "oct"):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid", "")
        found[kid if isinstance(kid, str) else str(kid)] = jwk
    if not found:
        raise KeysUnavailable(f"{where} holds no public signing key")
    return found


TIMEOUT_SETTING = "BATCHERY_JWT_JWKS_TIMEOUT_SECONDS"
READ_BYTES = 64 * 1024


def fetch_url(url: str, timeout: float) -> bytes:
    """Blocking: run in a thread. The whole answer within `timeout` seconds, or KeysUnavailable:
    each read may wait only for what is left of it, and the connection is dropped at once."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    body = bytearray()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        while len(body) <= MAX_JWKS_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise KeysUnavailable(too_slow(url, timeout))
            _limit_next_read(response, left)
            try:
                chunk = response.read1(READ_BYTES)
            except TimeoutError:
                raise KeysUnavailable(too_slow(url, timeout)) from None
            if not chunk:
                break
            body += chunk
    if len(body) > MAX_JWKS_BYTES:
        raise KeysUnavailable(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return bytes(body)


def too_slow(url: str, timeout: float) -> str:
    return (
        f"the JWKS at {url} timed out: no complete answer within {timeout:g} s "
        f"(the whole fetch; {TIMEOUT_SETTING})"
    )


def _limit_next_read(response: Any, seconds: float) -> None:
    # urllib exposes no way to change the timeout once the connection is open: its socket is
    # reached through the response's reader (CPython's http.client; absent elsewhere, the
    # deadline is still checked between reads).
    sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


@dataclass(frozen=True, slots=True)
class Fetched:
    keys: dict[str, dict[str, Any]]
    at: float


class CachedJwks:
    """A JWKS read by `read` (blocking: run in a thread), cached and refreshed as described."""

    def __init__(
        self,
        description: str,
        read: Callable[[], bytes],
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        deadline_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self._read = read
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._deadline_seconds = deadline_seconds
        self._fetched: Fetched | None = None
        self._last_attempt: float | None = None
        self._last_error = ""
        self._lock = asyncio.Lock()
        # PyJWK objects built from the JWKS, per (kid, alg): parsing a key once per set.
        self._built: dict[tuple[str, str], PyJWK] = {}
        self.fetches = 0
        # The refresh of an expired set, running while the held keys answer.
        self.refreshing: asyncio.Future[Fetched] | None = None

    def load_now(self) -> None:
        """Read the set synchronously (at start, for a file): errors stop the start."""
        self._store(parse_jwks(self._read(), self.description))

    async def key(self, kid: str | None, alg: str) -> PyJWK:
        fetched = self._fetched
        now = self._clock()
        if fetched is None:
            fetched = await self._refresh(reason="first use")
        elif now - fetched.at >= self._cache_seconds:
            # The held keys answer while the set is refreshed: waiting for it stalled every
            # JWT request for up to the fetch's timeout (a slow or dripping provider) each time
            # the set expired. A token whose key is not held waits for a fetch below.
            self._refresh_in_background()
        jwk = self._find(fetched, kid)
        if jwk is None and self._may_refresh(now):
            fetched = await self._refresh(reason=f"unknown key id {shown(kid)}")
            jwk = self._find(fetched, kid)
        if jwk is None:
            raise UnknownKey(
                f"was signed with the key id {shown(kid)}, which is not in {self.description}"
                if kid is not None
                else f"names no key id (kid), and {self.description} holds more than one key"
            )
        return self._build(jwk, kid or "", alg)

    def _refresh_in_background(self) -> None:
        if self.refreshing is None or self.refreshing.done():
            self.refreshing = asyncio.ensure_future(self._refresh(reason="expired"))

    def _may_refresh(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._min_refresh_seconds

    def _next_attempt_in(self, now: float) -> float:
        if self._last_attempt is None:
            return 1.0
        return max(1.0, self._last_attempt + self._min_refresh_seconds - now)

    def _find(self, fetched: Fetched, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return fetched.keys.get(kid)
        # No kid: acceptable only when the set leaves no choice.
        return next(iter(fetched.keys.values())) if len(fetched.keys) == 1 else None

    def _build(self, jwk: dict[str, Any], kid: str, alg: str) -> PyJWK:
        built = self._built.get((kid, alg))
        if built is not None:
            return built
        declared = jwk.get("alg")
        if declared is not None and declared != alg:
            raise UnknownKey(
                f"uses the algorithm {shown(alg)}, but its key is for {shown(declared)}"
            )
        try:
            built = PyJWK(jwk, alg)
        except PyJWTError as error:
            raise UnknownKey(
                f"uses the algorithm {shown(alg)}, which its key cannot verify ({error})"
            ) from None
        self._built[(kid, alg)] = built
        return built

    async def _refresh(self, reason: str) -> Fetched:
        started = self._fetched
        async with self._lock:
            # Another request fetched while this one waited for the lock: use its result.
            if self._fetched is not started and self._fetched is not None:
                return self._fetched
            now = self._clock()
            if not self._may_refresh(now) and started is None:
                raise KeysUnavailable(
                    f"{self.description} could not be read ({self._last_error}); retried at "
                    f"most every {self._min_refresh_seconds:g} s "
                    "(BATCHERY_JWT_JWKS_MIN_REFRESH_SECONDS)",
                    self._next_attempt_in(now),
                )
            if not self._may_refresh(now) and started is not None:
                return started
            self._last_attempt = now
            self.fetches += 1
            try:
                raw = await self._read_within_deadline()
                keys = parse_jwks(raw, self.description)
            except Exception as error:
                self._last_error = str(error) or type(error).__name__
                if started is None:
                    raise KeysUnavailable(
                        f"{self.description} could not be read: {self._last_error}",
                        self._next_attempt_in(now),
                    ) from None
                logger.warning(
                    "keeping the keys held: %s could not be refreshed (%s; reason: %s)",
                    self.description,
                    self._last_error,
                    reason,
                )
                # The held keys stay in use, and count as due again once a retry is allowed.
                held_since = now - self._cache_seconds + self._min_refresh_seconds
                self._fetched = Fetched(started.keys, held_since)
                return self._fetched
            return self._store(keys, now)

    async def _read_within_deadline(self) -> bytes:
        """`read` in a thread; the requests waiting for it wait `deadline_seconds` at most.
        `fetch_url` keeps its own deadline while it reads the body; this one also bounds what
        comes before (a provider dripping its headers), after which the thread is left to end
        on its per-read timeout (one fetch per `min_refresh_seconds` at most)."""
        if self._deadline_seconds is None:
            return await asyncio.to_thread(self._read)
        # A little grace: the thread's own deadline, with its clearer message, ends it first.
        seconds = self._deadline_seconds + 0.5
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.to_thread(self._read)
        except TimeoutError:
            raise KeysUnavailable(
                f"{self.description} timed out: no complete answer within "
                f"{self._deadline_seconds:g} s ({TIMEOUT_SETTING})"
            ) from None

    def _store(self, keys: dict[str, dict[str, Any]], at: float | None = None) -> Fetched:
        self._fetched = Fetched(keys, self._clock() if at is None else at)
        self._built = {}
        return self._fetched


class PemKey:
    """One public key from a PEM file: every token is checked against it, whatever its kid."""

    def __init__(self, path: Path) -> None:
        self.description = f"the public key {path} (BATCHERY_JWT_PUBLIC_KEY_FILE)"
        self._pem = path.read_bytes()
        self._built: dict[str, PyJWK] = {}

    async def key(self, kid: str | None, alg: str) -> PyJWK:
        built = self._built.get(alg)
        if built is None:
            built = self._build(alg)
            self._built[alg] = built
        return built

    def _build(self, alg: str) -> PyJWK:
        from jwt.algorithms import get_default_algorithms

        algorithm = get_default_algorithms()[alg]
        try:
            public = algorithm.prepare_key(self._pem)
            jwk = json.loads(algorithm.to_jwk(public))
            return PyJWK(jwk, alg)
        except (PyJWTError, ValueError, TypeError) as error:
            raise UnknownKey(
                f"uses the algorithm {shown(alg)}, which {self.description} cannot verify ({error})"
            ) from None
