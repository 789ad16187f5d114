"""OpenAI's error shape, {"error": {"message", "type", "param", "code"}}, and the status
each kind of failed Outcome gets: a 4xx for anything the caller can fix."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from assistant.flow.outcome import Outcome

# Outcome.error_type -> (HTTP status, OpenAI error type)
STATUS = {
    "BadInput": (400, "invalid_request_error"),
    "ModelUnavailable": (503, "model_unavailable"),
    "BudgetExceeded": (429, "insufficient_quota"),
    "RateLimited": (429, "rate_limit_exceeded"),
    "Refused": (403, "refused"),
    "InternalError": (500, "server_error"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "message": str(self),
                    "type": self.kind,
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
        )


def raise_for(outcome: Outcome) -> None:
    if outcome.status == "ok":
        return
    status, kind = STATUS.get(outcome.error_type or "", (500, "server_error"))
    raise ApiError(status, outcome.error or "The request failed.", kind=kind)
