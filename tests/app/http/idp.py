"""A tiny identity provider for the JWT tests: real keys (cryptography), tokens minted with PyJWT,
and its JWKS served over real HTTP by a server in a thread of the test process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example.test/"
AUDIENCE = "https://batchery.example.test"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private: Any) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwk_of(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(private.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass
class Idp:
    """Signing keys by kid (RS256 and ES256), and the JWKS that publishes them."""

    rsa: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    ec: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk_of(self.rsa, "rsa-1", "RS256"), jwk_of(self.ec, "ec-1", "ES256")]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()))
        return path

    def token(
        self,
        *,
        sub: str = "alice",
        scope: Any = "read",
        alg: str = "RS256",
        kid: str | None = None,
        key: Any = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "scope": scope,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        signer = key or (self.rsa if alg.startswith(("RS", "PS")) else self.ec)
        chosen_kid = kid or ("rsa-1" if alg.startswith(("RS", "PS")) else "ec-1")
        return jwt.encode(payload, signer, algorithm=alg, headers={"kid": chosen_kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A token PyJWT would refuse to mint: `alg: none`, or HS256 keyed with the public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(sign(signing_input.encode())) if sign is not None else ""
    return f"{signing_input}.{signature}"


def hs256_with(secret: bytes) -> Any:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


class JwksServer:
    """Serves `document` at /jwks.json; counts requests; `gate` holds answers while it is clear;
    `status` other than 200 answers an error."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.hits = 0
        self.status = 200
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        # > 0: the body is written one byte at a time, this many seconds apart (a provider
        # dripping its answer); `abandoned` is set when the client hangs up before the end.
        self.drip_seconds = 0.0
        self.abandoned = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                server.arrived.set()
                server.gate.wait(30)
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drip_seconds <= 0:
                    self.wfile.write(body)
                    return
                try:
                    for index in range(len(body)):
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                        time.sleep(server.drip_seconds)  # the drip itself, not a wait for it
                except OSError:  # the client hung up
                    server.abandoned.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"


@contextmanager
def serving(document: dict[str, Any]) -> Iterator[JwksServer]:
    server = JwksServer(document)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)


def random_kid() -> str:
    return uuid.uuid4().hex
