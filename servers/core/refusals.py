"""The request-head rules both framework adapters apply before the core sees a request, framework-free,
so that Sanic, Tornado and aiohttp refuse the same requests with the same status (the body is
`RecommenderApi.framework_error(status)`)."""

from __future__ import annotations

import re
from http import HTTPStatus

from servers.core.api import Reply

ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")  # scheme://authority before the path
HOST = re.compile(r"(?:[\[\]:A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*(?::[0-9]*)?")  # Tornado's, RFC 9110
MAX_QUERY_FIELDS = 1000  # Tornado's own limit


def bad_head(version: str, target: str, host: str | None) -> bool:
    """True if a parsed request head must get 400: a non-ASCII target, an absolute-form target without a
    path, more than MAX_QUERY_FIELDS query fields, a missing (HTTP/1.1) or invalid Host."""
    if not target.isascii() or target.partition("?")[2].count("&") >= MAX_QUERY_FIELDS:
        return True
    if not target.startswith("/") and (scheme := ABSOLUTE_FORM.match(target)) and not target.startswith("/", scheme.end()):
        return True
    if host is None:
        return version != "HTTP/1.0"
    return HOST.fullmatch(host) is None


def oversize_status(start: bytes, max_header_bytes: int) -> int:
    """A head over max_header_bytes: 414 if its request line alone is (no line end in `start`), else 431."""
    return 431 if b"\n" in start[:max_header_bytes] else 414


def closing_response(reply: Reply) -> bytes:
    """`reply` as a complete HTTP/1.1 response that announces the connection's close."""
    head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    head += [f"Content-Length: {len(reply.body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
