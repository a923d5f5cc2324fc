"""What the core raises when a dependency fails: the API answers it with 503 and Retry-After, and no
reply ever carries a driver's or an exception's name."""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency (the database) erred or did not answer in time; the request cannot be answered now."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency}: {detail}")
        self.dependency = dependency
        self.detail = detail
