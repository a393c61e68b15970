"""The one exception the SDK raises, so a caller (the CLI, a script) handles every
failure the same way: by its stable `api_code`, never by parsing a message."""

from __future__ import annotations

from soma.types.error import SomaError


class ApiError(SomaError):
    """The API answered with an error (`api_code`, the server's `code`), could not be
    reached (`UNREACHABLE`), did not answer in time (`TIMEOUT`), or the SDK refused a
    request before sending it (`INSUFFICIENT_BALANCE`, `NOTHING_TO_MERGE`...).

    `status` is the HTTP status when there was an answer, else None."""

    code = "API_ERROR"

    def __init__(self, api_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.api_code = api_code
        self.status = status

    def __str__(self) -> str:
        return f"[{self.api_code}] {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.api_code, "message": self.message}
