"""A JWT over a real WebSocket: presented in `connection_init`, verified like a bearer token on
any request (app/http/access.py `authenticate_key`), held to its scopes per subscription."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from schema.execution import Executor
from tests.app.http.idp import AUDIENCE, ISSUER, Idp
from tests.live import ticker
from tests.live.server import LiveServer
from tests.live.test_subscriptions import TICKS, acknowledged, open_socket, receive, subscribe


@pytest.fixture(scope="module")
def idp() -> Idp:
    return Idp()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, idp: Idp) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("jwt-subs")
    live = LiveServer(
        directory,
        auth="required",
        jwt_jwks_file=str(idp.write_jwks(directory / "jwks.json")),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    app = live.server.config.app
    app.state.executor = Executor(ticker.ticker_schema, live.settings)
    with live:
        yield live


def test_a_jwt_in_connection_init_runs_subscriptions_within_its_scopes(server, idp):
    with acknowledged(server, idp.token(sub="watcher", scope="read")) as ws:
        subscribe(ws, "1", TICKS, {"n": 2})
        assert [receive(ws)["payload"]["data"]["ticks"] for _ in range(2)] == [1, 2]
        assert receive(ws) == {"id": "1", "type": "complete"}
        subscribe(ws, "2", "subscription { secret }")
        refused = receive(ws)
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["missingScopes"] == ["bulk"]
    assert "jwt:watcher" in refused["payload"][0]["message"]


def test_an_expired_jwt_closes_the_socket_with_4403_naming_why(server, idp):
    token = idp.token(exp=1_000_000_000, iat=999_999_000, nbf=999_999_000)
    with (
        open_socket(server, {"Authorization": f"Bearer {token}"}) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert "expired at 2001-09-09" in closed.value.rcvd.reason
