"""JWTs from an identity provider as bearer tokens: verified with PyJWT, mapped to a `Caller`.

A bearer token shaped like a JWT (three base64url parts) is checked as one when a key source is
configured (BATCHERY_JWT_JWKS_URL, _JWKS_FILE or _PUBLIC_KEY_FILE): its header's `alg` must be
one of BATCHERY_JWT_ALGORITHMS (asymmetric only, so `none` and an HS256 token signed with the
public key as its secret are refused before any key is looked at), its `kid` must name a key of
the provider's set, and then PyJWT checks the signature, `exp`, `nbf` and `iat` (with the leeway),
`iss` and `aud` (both required and configured), and that `sub` is there. The caller is
`jwt:<sub>` (what the audit trail records and the rate limits key on; a `sub` too long for the
64-character audit column is `jwt:sha256:<hash>` instead), with the scopes its scopes claim names
(unknown names ignored). Every refusal says what is wrong, with the value the server expected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jwt
from jwt import exceptions as errors

from app.http.jwks import CachedJwks, KeySet, KeysUnavailable, PemKey, UnknownKey, fetch_url, shown
from app.settings import PREFIX, Settings, SettingsError, jwt_algorithms
from schema.access import SCOPES, Caller

JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Real tokens are well under 4 KiB; the cap bounds the work one header can ask for.
MAX_TOKEN_CHARS = 8192
CALLER_PREFIX = "jwt:"
# The audit trail's caller column holds 64 characters.
MAX_CALLER_CHARS = 64
SOURCES = ("jwt_jwks_url", "jwt_jwks_file", "jwt_public_key_file")


def variable(name: str) -> str:
    return PREFIX + name.upper()


def looks_like_jwt(token: str) -> bool:
    return JWT_SHAPE.fullmatch(token) is not None


@dataclass(frozen=True, slots=True)
class JwtConfig:
    keys: KeySet
    issuer: str
    audience: tuple[str, ...]
    algorithms: tuple[str, ...]
    scopes_claim: str
    scope_prefix: str
    leeway_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtConfig | None:
        """None when no key source is set; a `SettingsError` naming the variable when the
        settings cannot work (two sources, no issuer or audience, an unreadable key file)."""
        chosen = [name for name in SOURCES if getattr(settings, name)]
        if not chosen:
            stray = [n for n in ("jwt_issuer", "jwt_audience") if getattr(settings, n)]
            if stray:
                raise SettingsError(
                    f"{variable(stray[0])} is set but no key source is: set one of "
                    f"{', '.join(map(variable, SOURCES))}"
                )
            return None
        if len(chosen) > 1:
            raise SettingsError(
                f"set only one of {', '.join(map(variable, chosen))}: each is a whole key source"
            )
        for needed in ("jwt_issuer", "jwt_audience"):
            if not getattr(settings, needed).strip():
                raise SettingsError(
                    f"{variable(needed)} is required with {variable(chosen[0])}: without it, a "
                    "token the provider issued for any other service would be accepted here"
                )
        audience = tuple(a.strip() for a in settings.jwt_audience.split(",") if a.strip())
        return cls(
            keys=key_set(settings, chosen[0]),
            issuer=settings.jwt_issuer.strip(),
            audience=audience,
            algorithms=jwt_algorithms(variable("jwt_algorithms"), settings.jwt_algorithms),
            scopes_claim=settings.jwt_scopes_claim.strip(),
            scope_prefix=settings.jwt_scope_prefix,
            leeway_seconds=settings.jwt_leeway_seconds,
        )


def key_set(settings: Settings, source: str) -> KeySet:
    value: str = getattr(settings, source).strip()
    name = variable(source)

    def cached(
        description: str, read: Callable[[], bytes], deadline: float | None = None
    ) -> CachedJwks:
        return CachedJwks(
            description,
            read,
            cache_seconds=settings.jwt_jwks_cache_seconds,
            min_refresh_seconds=settings.jwt_jwks_min_refresh_seconds,
            deadline_seconds=deadline,
        )

    if source == "jwt_jwks_url":
        if not value.startswith(("https://", "http://")):
            raise SettingsError(f"{name} must be an https:// (or http://) URL, got {value!r}")
        fetch = partial(fetch_url, value, settings.jwt_jwks_timeout_seconds)
        return cached(f"the JWKS at {value} ({name})", fetch, settings.jwt_jwks_timeout_seconds)
    path = Path(value)
    try:
        if source == "jwt_public_key_file":
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            load_pem_public_key(path.read_bytes())
            return PemKey(path)
        jwks = cached(f"the JWKS file {path} ({name})", path.read_bytes)
        jwks.load_now()
        return jwks
    except (OSError, ValueError, TypeError, KeysUnavailable) as error:
        raise SettingsError(f"{name}: cannot use {value!r}: {error}") from None


class TokenRefused(Exception):
    """The token is not acceptable; the message completes 'The bearer token (a JWT) ...'."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JwtVerifier:
    def __init__(self, config: JwtConfig) -> None:
        self.config = config

    async def caller(self, token: str) -> Caller:
        """The caller the token proves, or `TokenRefused` (401) or `KeysUnavailable` (503)."""
        config = self.config
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused(f"is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except errors.PyJWTError as error:
            raise TokenRefused(f"is not a well-formed JWT ({error})") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in config.algorithms:
            raise TokenRefused(
                f"is signed with the algorithm {shown(alg)}; this server accepts "
                f"{', '.join(config.algorithms)} (BATCHERY_JWT_ALGORITHMS)"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("has a key id (kid) that is not a string")
        try:
            key = await config.keys.key(kid, alg)
        except UnknownKey as error:
            raise TokenRefused(str(error)) from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=list(config.audience),
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except errors.PyJWTError as error:
            raise TokenRefused(self._why(error, token, kid)) from None
        return Caller(caller_id(claims["sub"]), self._scopes(claims), authenticated=True)

    def _why(self, error: errors.PyJWTError, token: str, kid: str | None) -> str:
        config = self.config
        # Claims are read for the message only after PyJWT checked the signature: every error
        # below but the first is raised after that check.
        if isinstance(error, errors.InvalidSignatureError):
            return f"has a signature that does not verify with the key {shown(kid)} of " + (
                config.keys.description
            )
        claims = _unverified_claims(token)
        if isinstance(error, errors.ExpiredSignatureError):
            return (
                f"expired at {_time(claims.get('exp'))} (leeway {config.leeway_seconds} s, "
                "BATCHERY_JWT_LEEWAY_SECONDS)"
            )
        if isinstance(error, errors.ImmatureSignatureError):
            if not str(error).endswith("(iat)"):
                return f"is not valid before {_time(claims.get('nbf'))}"
            # PyJWT says the same of an `iat` in the future (checked before `nbf`): a clock the
            # provider got wrong.
            return (
                f"was issued at {_time(claims.get('iat'))}, in the future (leeway "
                f"{config.leeway_seconds} s, BATCHERY_JWT_LEEWAY_SECONDS)"
            )
        if isinstance(error, errors.MissingRequiredClaimError):
            return f"lacks the required claim {error.claim!r}"
        if isinstance(error, errors.InvalidAudienceError):
            expected = " or ".join(map(shown, config.audience))
            return (
                f"is for the audience {shown(claims.get('aud'))}; this server expects "
                f"{expected} (BATCHERY_JWT_AUDIENCE)"
            )
        if isinstance(error, errors.InvalidIssuerError):
            return (
                f"was issued by {shown(claims.get('iss'))}; this server accepts tokens from "
                f"{shown(config.issuer)} (BATCHERY_JWT_ISSUER)"
            )
        return f"is not valid ({error})"

    def _scopes(self, claims: dict[str, Any]) -> frozenset[str]:
        name = self.config.scopes_claim
        value = claims.get(name)
        if value is None:
            return frozenset()
        listed: Iterable[object]
        if isinstance(value, str):
            listed = value.split()
        elif isinstance(value, list):
            listed = value
        else:
            raise TokenRefused(
                f"has a {name!r} claim that is neither a space-separated string nor a list "
                "(BATCHERY_JWT_SCOPES_CLAIM)"
            )
        prefix = self.config.scope_prefix
        found = set()
        for item in listed:
            if isinstance(item, str) and item.startswith(prefix):
                scope = item[len(prefix) :]
                if scope in SCOPES:
                    found.add(scope)
        return frozenset(found)


def caller_id(subject: object) -> str:
    sub = str(subject)
    if not sub:
        raise TokenRefused("has an empty subject (sub)")
    whole = CALLER_PREFIX + sub
    # Only printable text is kept as sent: a NUL (refused by PostgreSQL's text), a lone
    # surrogate (not UTF-8) or a line break (a forged log line) would make the audit row of a
    # write that ran fail, or lie. Those subjects are hashed like the long ones.
    if len(whole) <= MAX_CALLER_CHARS and sub.isprintable():
        return whole
    digest = hashlib.sha256(sub.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{CALLER_PREFIX}sha256:{digest[:32]}"


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except errors.PyJWTError:
        return {}
    return claims


def _time(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            pass
    return shown(value)
