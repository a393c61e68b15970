"""The one exception the SDK raises, so a caller (the CLI, a script) handles every
failure the same way: by its stable `api_code`, never by parsing a message."""

from __future__ import annotations

from typing import Any

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
        #: Results of transactions the same call had executed before this error (a
        #: merge in several transactions): they happened, and charged their fees.
        self.completed: list[dict[str, Any]] = []
        self._own_message = message

    def after(self, completed: list[dict[str, Any]]) -> ApiError:
        """This error, noting (in its message too) the transactions that had executed
        before it; `completed` replaces any it noted already."""
        if not completed:
            return self
        digests = ", ".join(str(r.get("digest")) for r in completed[:3])
        more = "" if len(completed) <= 3 else f" and {len(completed) - 3} more"
        error = ApiError(
            self.api_code,
            f"{self._own_message} (after {len(completed)} transaction(s) had executed: "
            f"{digests}{more})",
            self.status,
        )
        error._own_message = self._own_message
        error.completed = list(completed)
        return error

    def __str__(self) -> str:
        return f"[{self.api_code}] {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.api_code, "message": self.message}
