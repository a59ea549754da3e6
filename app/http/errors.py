"""Refusals of a request as a whole: a status code, and one error a person can act on.

They answer `{"errors": [{"message": ..., "extensions": {"code": ..., ...}}]}`. A refusal caused by
a limit also names the setting and its value in `extensions` (`limit`, `setting`), so a client can
split its batch or shrink its files without parsing the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.settings import PREFIX


class RequestError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def payload(self) -> dict[str, Any]:
        return {
            "errors": [
                {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
            ]
        }


def bad_request(message: str) -> RequestError:
    return RequestError(400, message, "BAD_REQUEST")


def too_large(message: str, code: str, setting: str, limit: int) -> RequestError:
    """413 for a request over one of the transport limits; `setting` is the Settings field."""
    variable = PREFIX + setting.upper()
    shown = f"{limit} bytes" if setting.endswith("_bytes") else str(limit)
    return RequestError(
        413,
        f"{message} (limit: {shown}, set by {variable})",
        code,
        extensions={"limit": limit, "setting": variable},
    )
