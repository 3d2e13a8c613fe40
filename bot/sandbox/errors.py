"""GitHub's error responses: `{"message": ..., "documentation_url": ...}`."""

from __future__ import annotations

from typing import Any

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """An error answer; raised anywhere in a REST handler, rendered by the endpoint wrapper."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.documentation_url = documentation_url

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            data["errors"] = self.errors
        data["documentation_url"] = self.documentation_url
        data["status"] = str(self.status)
        return data

    @classmethod
    def not_found(cls) -> ApiError:
        return cls(404, "Not Found")

    @classmethod
    def invalid(
        cls, resource: str, field: str, code: str = "invalid", message: str | None = None
    ) -> ApiError:
        error: dict[str, Any] = {"resource": resource, "field": field, "code": code}
        if message:
            error["message"] = message
        return cls(422, "Validation Failed", errors=[error])

    @classmethod
    def unauthenticated(cls) -> ApiError:
        return cls(401, "Requires authentication")

    @classmethod
    def bad_credentials(cls) -> ApiError:
        return cls(401, "Bad credentials")
