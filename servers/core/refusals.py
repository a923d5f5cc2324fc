"""How a framework adapter answers a request it refuses before the core sees it, framework-free: which
requests those are is `servers.core.framing`'s to decide; the answer is the core's JSON
(`RecommenderApi.framework_error(status)`) with the same status on Sanic, Tornado and aiohttp, then the
connection closes."""

from __future__ import annotations

from http import HTTPStatus

from servers.core.api import Reply


class Refused(Exception):
    """A request refused with `status` (raised where a framework waits for the refused request's bytes)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def closing_response(reply: Reply) -> bytes:
    """`reply` as a complete HTTP/1.1 response that announces the connection's close."""
    head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    head += [f"Content-Length: {len(reply.body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
