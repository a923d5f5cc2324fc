"""What the core raises when a request cannot be answered: a bad request (4xx, the same JSON on every
framework) or a dependency that failed (503 and Retry-After); no reply ever carries a driver's or an
exception's name."""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency (the database) erred or did not answer in time; the request cannot be answered now."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency}: {detail}")
        self.dependency = dependency
        self.detail = detail


class BadRequest(Exception):
    """The request itself is wrong: answered with `status` and `{"error": error, "detail": detail}`."""

    def __init__(self, error: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.status = status
