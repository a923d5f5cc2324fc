"""HTTP/1.1 framing, identical on every framework: raw requests (methods, versions, request-line oddities,
header syntax, counts and sizes, Content-Length and Transfer-Encoding, chunked bodies, pipelining, slow
heads and bodies) sent over sockets to real Sanic, Tornado and aiohttp servers with the default limits,
each answered with the same statuses and the same JSON bodies on all three. The rules themselves live
in servers/core/framing.py; the first tests here check its byte stream without a server."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest

from reclab.host.ports import HOST
from reclab.host.processes import ProcessGroup
from reclab.run.server import RunningServer, start_server
from reclab.services.start import Endpoints
from servers.core.api import REFUSALS
from servers.core.framing import RequestStream
from servers.core.limits import Limits
from servers.core.variant import SELF_SERVED, Variant

LIMITS = Limits()  # the defaults: a 10 s request timeout, 8 KB heads, 100 fields, 64 KB bodies
READ_TIMEOUT_S = 5.0  # every reply but a timeout's comes well within this
EXTRA_REPLY_WAIT_S = 0.05  # after the replies expected: time for an unexpected one to show
# The 408s: due 10 s after the request's first byte. A busy machine delays a timer, never fires it early,
# so the window is generous on the late side only.
TIMEOUT_WINDOW_S = (LIMITS.header_timeout_s - 0.5, LIMITS.header_timeout_s + 5.0)
SLOW_TEST_S = LIMITS.header_timeout_s + 6.0  # how long the slow connections are watched
REFUSED = {error for error, _ in REFUSALS.values()}  # a framework's refusal: the connection must close after it

H = b"Host: 127.0.0.1\r\n"
HEALTH = b"GET /health HTTP/1.1\r\n" + H
ITEMS = b"GET /recommend/items/7?limit=1 HTTP/1.1\r\n" + H  # 200, the same bytes on every framework
POST = b"POST /health HTTP/1.1\r\n" + H  # 405 once its body is read: the body's framing decides first
CHUNKED = b"Transfer-Encoding: chunked\r\n"


class Case(NamedTuple):
    request: bytes
    statuses: tuple[int, ...]  # the replies, in order


def case(request: bytes, *statuses: int) -> Case:
    return Case(request, statuses)


def padded_head(total: int) -> bytes:
    """A /health head of exactly `total` bytes."""
    start, end = HEALTH + b"X-Pad: ", b"\r\n\r\n"
    return start + b"a" * (total - len(start) - len(end)) + end


def fields(count: int, template: bytes = b"x-h%d: v\r\n") -> bytes:
    return b"".join(template % i for i in range(count))


CASES: dict[str, Case] = {
    # request lines and methods
    "health": case(HEALTH + b"\r\n", 200),
    "garbage_line": case(b"GARBAGE\r\n\r\n", 400),
    "method_only": case(b"GET\r\n\r\n", 400),
    "extra_token": case(b"GET /health HTTP/1.1 extra\r\n" + H + b"\r\n", 400),
    "http09_no_version": case(b"GET /health\r\n\r\n", 400),
    "http2_version": case(b"GET /health HTTP/2.0\r\n" + H + b"\r\n", 400),
    "http3_version": case(b"GET /health HTTP/3.0\r\n" + H + b"\r\n", 400),
    "http0_9_version": case(b"GET /health HTTP/0.9\r\n" + H + b"\r\n", 400),
    "http1_2_served_as_1_1": case(b"GET /health HTTP/1.2\r\n" + H + b"\r\n", 200),
    "version_lowercase": case(b"GET /health http/1.1\r\n" + H + b"\r\n", 400),
    "version_two_digits": case(b"GET /health HTTP/1.10\r\n" + H + b"\r\n", 400),
    "lowercase_method": case(b"get /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "mixed_case_method": case(b"Get /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "unknown_method": case(b"FOO /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "webdav_method": case(b"PROPFIND /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "method_not_a_token": case(b"G@T /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "connect_authority_form": case(b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "options_health": case(b"OPTIONS /health HTTP/1.1\r\n" + H + b"\r\n", 405),
    "trace_health": case(b"TRACE /health HTTP/1.1\r\n" + H + b"\r\n", 405),
    "put_health": case(b"PUT /health HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", 405),
    "delete_metrics": case(b"DELETE /metrics HTTP/1.1\r\n" + H + b"\r\n", 405),
    "patch_items": case(b"PATCH /recommend/items/7 HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", 405),
    "head_health": case(b"HEAD /health HTTP/1.1\r\n" + H + b"\r\n", 200),
    "double_space": case(b"GET  /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "tab_separator": case(b"GET\t/health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "space_after_version": case(b"GET /health HTTP/1.1 \r\n" + H + b"\r\n", 400),
    "space_before_method": case(b" GET /health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "empty_line_before_request": case(b"\r\n" + HEALTH + b"\r\n", 200),
    "empty_lines_before_request": case(b"\r\n\r\n\r\n" + HEALTH + b"\r\n", 200),
    "lf_before_request": case(b"\n" + HEALTH + b"\r\n", 400),
    # request targets
    "absolute_form": case(b"GET http://127.0.0.1/health HTTP/1.1\r\n" + H + b"\r\n", 200),
    "absolute_form_query": case(b"GET http://127.0.0.1:80/recommend/items/7?limit=1 HTTP/1.1\r\n" + H + b"\r\n", 200),
    "absolute_form_no_path": case(b"GET http://127.0.0.1 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "asterisk_options": case(b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", 404),
    "asterisk_get": case(b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    "authority_form_get": case(b"GET 127.0.0.1:80 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "relative_target": case(b"GET health HTTP/1.1\r\n" + H + b"\r\n", 400),
    "raw_utf8_path": case(b"GET /recommend/items/\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "raw_ff_query": case(b"GET /recommend/items/7?service=\xff HTTP/1.1\r\n" + H + b"\r\n", 400),
    "fragment": case(b"GET /health#top HTTP/1.1\r\n" + H + b"\r\n", 400),
    "pipe_in_query": case(b"GET /recommend/items/7?limit=1|2 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "angle_bracket_in_path": case(b"GET /recommend/items/<7> HTTP/1.1\r\n" + H + b"\r\n", 400),
    "backslash_in_path": case(b"GET /recommend\\items/7 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "pct_encoded_digit": case(b"GET /recommend/items/%37?limit=1 HTTP/1.1\r\n" + H + b"\r\n", 200),
    "pct_encoded_nul": case(b"GET /recommend/items/7%00 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "query_999_fields": case(b"GET /recommend/items/7?" + b"&".join([b"a"] * 999) + b" HTTP/1.1\r\n" + H + b"\r\n", 400),
    "query_1001_fields": case(b"GET /recommend/items/7?" + b"&".join([b"a"] * 1001) + b" HTTP/1.1\r\n" + H + b"\r\n", 400),
    "long_target_9000": case(b"GET /recommend/items/7?user=" + b"1" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "long_target_70000": case(b"GET /recommend/items/7?user=" + b"1" * 70_000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    # Host
    "http1_1_no_host": case(b"GET /health HTTP/1.1\r\n\r\n", 400),
    "http1_0_no_host": case(b"GET /health HTTP/1.0\r\n\r\n", 200),
    "host_with_space": case(b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "two_hosts": case(HEALTH + b"Host: 127.0.0.2\r\n\r\n", 400),
    "host_with_port": case(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", 200),
    "host_empty": case(b"GET /health HTTP/1.1\r\nHost:\r\n\r\n", 200),
    "host_ipv6": case(b"GET /health HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200),
    "host_with_userinfo": case(b"GET /health HTTP/1.1\r\nHost: user@127.0.0.1\r\n\r\n", 400),
    # header syntax
    "space_before_colon": case(b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    "te_space_before_colon": case(POST + b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    "no_colon": case(HEALTH + b"NoColonHere\r\n\r\n", 400),
    "empty_field_name": case(HEALTH + b": v\r\n\r\n", 400),
    "obs_fold": case(HEALTH + b"X-A: a\r\n b\r\n\r\n", 400),
    "obs_fold_tab": case(HEALTH + b"X-A: a\r\n\tb\r\n\r\n", 400),
    "nul_in_value": case(HEALTH + b"X-A: a\x00b\r\n\r\n", 400),
    "cr_in_value": case(HEALTH + b"X-A: a\rb\r\n\r\n", 400),
    "lf_in_value": case(HEALTH + b"X-A: a\nb\r\n\r\n", 400),
    "del_in_value": case(HEALTH + b"X-A: a\x7fb\r\n\r\n", 400),
    "escape_in_value": case(HEALTH + b"X-A: a\x1bb\r\n\r\n", 400),
    "bare_lf_line_ends": case(b"GET /health HTTP/1.1\nHost: 127.0.0.1\n\n", 400),
    "bare_lf_last_line_only": case(HEALTH + b"\n", 400),
    "bare_cr_line_end": case(b"GET /health HTTP/1.1\rHost: 127.0.0.1\r\n\r\n", 400),
    "obs_text_in_value": case(HEALTH + b"X-A: caf\xc3\xa9 \xff\r\n\r\n", 200),
    "non_ascii_field_name": case(HEALTH + b"X-\xc3\xa9: v\r\n\r\n", 400),
    "tab_in_value": case(HEALTH + b"X-A: a\tb\r\n\r\n", 200),
    "empty_value": case(HEALTH + b"X-A:   \r\n\r\n", 200),
    "token_characters_in_name": case(HEALTH + b"X-A!#$%&'*+.^_`|~: v\r\n\r\n", 200),
    # header counts and sizes
    "100_fields": case(HEALTH + fields(99) + b"\r\n", 200),
    "101_fields": case(HEALTH + fields(100) + b"\r\n", 431),
    "1000_fields_in_7KB": case(HEALTH + fields(1000, b"h%d:1\r\n") + b"\r\n", 431),
    "1000_fields_in_15KB": case(HEALTH + fields(1000, b"x-h%05d: v\r\n") + b"\r\n", 431),
    "field_9000": case(HEALTH + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "field_20000": case(HEALTH + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    "head_8100": case(padded_head(8100), 200),
    "head_8192": case(padded_head(LIMITS.max_header_bytes), 200),
    "head_8193": case(padded_head(LIMITS.max_header_bytes + 1), 431),
    # Content-Length
    "two_lengths_differing": case(HEALTH + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\n", 400),
    "two_lengths_same": case(HEALTH + b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
    "length_list": case(ITEMS + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    "length_negative": case(HEALTH + b"Content-Length: -1\r\n\r\n", 400),
    "length_not_a_number": case(HEALTH + b"Content-Length: abc\r\n\r\n", 400),
    "length_plus": case(HEALTH + b"Content-Length: +0\r\n\r\n", 400),
    "length_hex": case(HEALTH + b"Content-Length: 0x5\r\n\r\nhello", 400),
    "length_huge": case(HEALTH + b"Content-Length: 99999999999999999999\r\n\r\n", 413),
    "length_70000_with_body": case(HEALTH + b"Content-Length: 70000\r\n\r\n" + b"a" * 70_000, 413),
    "length_70000_no_body": case(HEALTH + b"Content-Length: 70000\r\n\r\n", 413),
    "length_leading_zeros": case(ITEMS + b"Content-Length: 005\r\n\r\nhello", 200),
    "length_with_spaces": case(ITEMS + b"Content-Length:   5  \r\n\r\nhello", 200),
    "get_with_body": case(ITEMS + b"Content-Length: 5\r\n\r\nhello", 200),
    "post_empty_body": case(POST + b"Content-Length: 0\r\n\r\n", 405),
    "length_short_rest_is_a_bad_request": case(ITEMS + b"Content-Length: 2\r\n\r\nhello\r\n\r\n", 200, 400),
    # Transfer-Encoding
    "te_and_cl_smuggling": case(
        POST + b"Content-Length: 35\r\n" + CHUNKED + b"\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", 400
    ),
    "te_and_cl_get": case(HEALTH + b"Content-Length: 5\r\n" + CHUNKED + b"\r\n0\r\n\r\n", 400),
    "te_gzip": case(POST + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    "te_xchunked": case(POST + b"Transfer-Encoding: xchunked\r\n\r\n", 400),
    "te_gzip_chunked": case(POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    "te_chunked_twice": case(POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    "te_in_http1_0": case(b"POST /health HTTP/1.0\r\n" + CHUNKED + b"\r\n0\r\n\r\n", 400),
    "te_capitalised": case(POST + b"Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 405),
    "te_with_spaces": case(POST + b"Transfer-Encoding:   chunked  \r\n\r\n5\r\nhello\r\n0\r\n\r\n", 405),
    "te_over_two_fields": case(POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n", 405),
    # chunked bodies
    "chunked": case(POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\n\r\n", 405),
    "chunked_many_chunks": case(POST + CHUNKED + b"\r\n" + b"1\r\na\r\n" * 50 + b"0\r\n\r\n", 405),
    "chunked_get": case(ITEMS + CHUNKED + b"\r\n5\r\nhello\r\n0\r\n\r\n", 200),
    "chunked_empty": case(POST + CHUNKED + b"\r\n0\r\n\r\n", 405),
    "chunk_extension": case(POST + CHUNKED + b"\r\n5;name=value\r\nhello\r\n0;last\r\n\r\n", 405),
    "chunk_extension_quoted": case(POST + CHUNKED + b'\r\n5;name="a b;c"\r\nhello\r\n0\r\n\r\n', 405),
    "chunk_extension_spaces": case(POST + CHUNKED + b"\r\n5 ; a = b\r\nhello\r\n0\r\n\r\n", 405),
    "chunk_extension_no_name": case(POST + CHUNKED + b"\r\n5;=x\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_trailers": case(POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", 405),
    "chunk_trailer_bad": case(POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX-Sum : 1\r\n\r\n", 400),
    "chunk_size_not_hex": case(POST + CHUNKED + b"\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_size_negative": case(POST + CHUNKED + b"\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_size_0x": case(POST + CHUNKED + b"\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_size_trailing_space": case(POST + CHUNKED + b"\r\n5 \r\nhello\r\n0\r\n\r\n", 400),
    "chunk_size_empty": case(POST + CHUNKED + b"\r\n\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_size_leading_zeros": case(POST + CHUNKED + b"\r\n00000000000000000005\r\nhello\r\n000\r\n\r\n", 405),
    "chunk_size_overflow": case(POST + CHUNKED + b"\r\nFFFFFFFFFFFFFFFFFF\r\n", 413),
    "chunk_size_over_limit": case(POST + CHUNKED + b"\r\n10001\r\n", 413),
    "chunked_70000": case(POST + CHUNKED + b"\r\n" + (b"2710\r\n" + b"a" * 10_000 + b"\r\n") * 7 + b"0\r\n\r\n", 413),
    "chunk_longer_than_size": case(POST + CHUNKED + b"\r\n3\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_without_crlf": case(POST + CHUNKED + b"\r\n5\r\nhello0\r\n\r\n", 400),
    "chunk_size_bare_lf": case(POST + CHUNKED + b"\r\n5\nhello\r\n0\r\n\r\n", 400),
    "chunked_then_request": case(POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\n\r\n" + HEALTH + b"\r\n", 405, 200),
    # pipelining and what follows a request
    "pipelined_3": case((HEALTH + b"\r\n") * 3, 200, 200, 200),
    "body_then_pipelined": case(ITEMS + b"Content-Length: 5\r\n\r\nhello" + HEALTH + b"\r\n", 200, 200),
    "pipelined_then_bad_method": case(HEALTH + b"\r\nFOO /health HTTP/1.1\r\n" + H + b"\r\n", 200, 400),
    "pipelined_then_bare_lf": case(HEALTH + b"\r\nGET /health HTTP/1.1\n\n", 200, 400),
    "pipelined_then_too_many_fields": case(HEALTH + b"\r\n" + HEALTH + fields(200) + b"\r\n", 200, 431),
    "chunked_then_garbage": case(POST + CHUNKED + b"\r\n0\r\n\r\nGARBAGE\r\n\r\n", 405, 400),
    "close_then_request": case(HEALTH + b"Connection: close\r\n\r\n" + HEALTH + b"\r\n", 200),
    "expect_100_continue": case(ITEMS + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", 200),
    "expect_unknown": case(ITEMS + b"Expect: something-else\r\nContent-Length: 3\r\n\r\nabc", 200),
    "upgrade_websocket_ignored": case(
        ITEMS + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n" + HEALTH + b"\r\n",
        200,
        200,
    ),
    "upgrade_h2c_ignored": case(ITEMS + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + HEALTH + b"\r\n", 200, 200),
    "connection_option_keeps_alive": case(ITEMS + b"Connection: TE\r\nTE: trailers\r\n\r\n" + HEALTH + b"\r\n", 200, 200),
    "http1_0_keep_alive": case(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + HEALTH + b"\r\n", 200, 200),
    "http1_0_closes": case(b"GET /health HTTP/1.0\r\n\r\n" + HEALTH + b"\r\n", 200),
}


class Answer(NamedTuple):
    status: int
    body: object  # the JSON body (a /health body without its worker's pid), None if empty


def parse_replies(data: bytes, head_request: bool) -> list[Answer] | None:
    """The whole replies in `data` (1xx interim replies skipped); None while the last is incomplete."""
    answers: list[Answer] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0 if head_request or status < 200 else content_length(lines[1:])
        if len(rest) < length:
            return None
        body, data = rest[:length], rest[length:]
        if status >= 200:
            answers.append(Answer(status, normalised(body)))
    return answers


def content_length(lines: list[bytes]) -> int:
    for line in lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def normalised(body: bytes) -> object:
    if not body:
        return None
    value = orjson.loads(body)
    if isinstance(value, dict):  # /health names the process, the framework and the event loop that answered
        for volatile in ("worker", "framework", "loop"):
            value.pop(volatile, None)
    return value


class Exchange(NamedTuple):
    answers: list[Answer]
    closed: bool  # the server closed the connection after them
    elapsed_s: float  # from the first byte sent to the last reply or the close


def exchange(port: int, request: bytes, expected: int) -> Exchange:
    """Send `request` at once, read `expected` replies (and any more sent at once), until the server closes
    when the last is a refusal."""
    with socket.create_connection((HOST, port), timeout=READ_TIMEOUT_S) as conn:
        start = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(request)
        return read_replies(conn, request.startswith(b"HEAD"), expected, start)


def read_replies(conn: socket.socket, head_request: bool, expected: int, start: float) -> Exchange:
    data, closed, answers = b"", False, []
    while True:
        answers = parse_replies(data, head_request) or answers
        if len(answers) >= expected and not (answers and body_error(answers[-1]) in REFUSED):
            conn.settimeout(EXTRA_REPLY_WAIT_S)
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return Exchange(parse_replies(data, head_request) or answers, closed, time.monotonic() - start)


def body_error(answer: Answer) -> object:
    return answer.body.get("error") if isinstance(answer.body, dict) else None


@pytest.fixture(scope="module")
def servers(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    log_dir: Path = tmp_path_factory.mktemp("framing")
    with ProcessGroup() as group:
        yield {
            fw: start_server(group, fw, Variant(), services, log_dir) for fw in SELF_SERVED
        }  # uvicorn and Granian frame HTTP themselves (tests/test_asgi_servers.py)


def test_the_suite_covers_at_least_95_cases() -> None:
    assert len(CASES) >= 95


@pytest.mark.parametrize("name", CASES)
async def test_the_stream_passes_the_same_bytes_however_they_arrive(name: str) -> None:
    """Byte by byte or all at once: the same bytes passed on, the same refusal."""
    request = CASES[name].request

    async def feed(pieces: list[bytes]) -> tuple[bytes, list[int]]:
        refusals: list[int] = []
        stream = RequestStream(LIMITS, refusals.append, asyncio.get_running_loop())
        passed = b"".join(stream.feed(piece) for piece in pieces)
        await asyncio.sleep(0)
        stream.close()
        return passed, refusals

    at_once = await feed([request])
    assert await feed([request[i : i + 1] for i in range(len(request))]) == at_once
    assert len(at_once[1]) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_every_framework_answers_alike(servers: dict[str, RunningServer], name: str) -> None:
    request, statuses = CASES[name]
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = {fw: pool.submit(exchange, server.port, request, len(statuses)) for fw, server in servers.items()}
        got = {fw: future.result() for fw, future in futures.items()}
    answers = {fw: got[fw].answers for fw in got}
    assert {fw: tuple(a.status for a in answers[fw]) for fw in got} == dict.fromkeys(got, statuses), answers
    assert all(answers[fw] == answers["sanic"] for fw in got), answers
    for framework, result in got.items():
        last = result.answers[-1]
        if body_error(last) in REFUSED:  # a refusal ends the connection
            assert result.closed, f"{framework} kept the connection open after {last}"
            assert set(last.body) == {"error", "detail"}  # type: ignore[arg-type]


class Slow(NamedTuple):
    parts: tuple[tuple[float, bytes], ...]  # (seconds after the connection, bytes) to send
    statuses: tuple[int, ...]  # the replies; the last one (or the close, if none) is timed
    timed_from: float = 0.0  # when the timed request's first byte is sent


def trickled(data: bytes, every_s: float, until_s: float) -> tuple[tuple[float, bytes], ...]:
    """`data` one byte every `every_s`, for `until_s` at most."""
    count = min(len(data), int(until_s / every_s))
    return tuple((i * every_s, data[i : i + 1]) for i in range(count))


SLOW_CASES: dict[str, Slow] = {
    "partial_request_line": Slow(((0.0, b"GET /hea"),), (408,)),
    "head_without_blank_line": Slow(((0.0, HEALTH),), (408,)),
    "head_trickled": Slow(trickled(HEALTH + b"X-Slow: " + b"a" * 100 + b"\r\n\r\n", 0.5, SLOW_TEST_S - 2), (408,)),
    "length_1000_no_body": Slow(((0.0, POST + b"Content-Length: 1000\r\n\r\n"),), (408,)),
    "length_10_partial_body": Slow(((0.0, POST + b"Content-Length: 10\r\n\r\nabc"),), (408,)),
    "body_trickled": Slow(((0.0, POST + b"Content-Length: 100\r\n\r\n"), *trickled(b"a" * 100, 1.0, SLOW_TEST_S - 2)), (408,)),
    "chunked_no_last_chunk": Slow(((0.0, POST + CHUNKED + b"\r\n5\r\nhello\r\n"),), (408,)),
    "chunk_partial_data": Slow(((0.0, POST + CHUNKED + b"\r\n5\r\nhel"),), (408,)),
    "chunk_partial_trailers": Slow(((0.0, POST + CHUNKED + b"\r\n0\r\nX-Sum: 1\r\n"),), (408,)),
    "pipelined_then_partial": Slow(((0.0, HEALTH + b"\r\nGET /health HTTP/1.1\r\n"),), (200, 408)),
    "second_request_slow": Slow(((0.0, HEALTH + b"\r\n"), (1.0, b"GET /health HTTP/1.1\r\n")), (200, 408), 1.0),
    # closed after keepalive_s, without a reply: empty lines before a request are no request
    "idle": Slow((), ()),
    "only_empty_lines": Slow(((0.0, b"\r\n\r\n"),), ()),
}


def slow_exchange(port: int, slow: Slow) -> Exchange:
    """Send `slow.parts` on their schedule while reading replies, until the server closes."""
    parts = slow.parts
    with socket.create_connection((HOST, port), timeout=READ_TIMEOUT_S) as conn:
        start = time.monotonic()
        data, closed, sent = b"", False, 0
        while time.monotonic() - start < SLOW_TEST_S:
            while sent < len(parts) and time.monotonic() - start >= parts[sent][0]:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    conn.sendall(parts[sent][1])
                sent += 1
            wait = parts[sent][0] - (time.monotonic() - start) if sent < len(parts) else SLOW_TEST_S
            if select.select([conn], [], [], max(0.0, min(wait, SLOW_TEST_S - (time.monotonic() - start))))[0]:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                data += chunk
        return Exchange(parse_replies(data, False) or [], closed, time.monotonic() - start - slow.timed_from)


@pytest.mark.slow
def test_slow_heads_and_bodies_get_408_after_10_s_on_every_framework(servers: dict[str, RunningServer]) -> None:
    """Every slow connection at once, on every framework: each gets its replies, the 408 not before 9.5 s
    nor after 15 s (a loaded machine fires timers late, never early), then the close; an idle connection
    is closed after the keep-alive time without a reply."""
    jobs = {(name, fw): (server.port, slow) for name, slow in SLOW_CASES.items() for fw, server in servers.items()}
    with ThreadPoolExecutor(len(jobs)) as pool:  # all at once: the test takes one timeout, not 36
        futures = {key: pool.submit(slow_exchange, *job) for key, job in jobs.items()}
        results = {key: future.result() for key, future in futures.items()}
    failures = []
    for (name, framework), result in sorted(results.items()):
        statuses = [answer.status for answer in result.answers]
        expected = list(SLOW_CASES[name].statuses)
        low, high = TIMEOUT_WINDOW_S if expected else (LIMITS.keepalive_s - 0.5, SLOW_TEST_S)
        if statuses != expected or not result.closed or not low <= result.elapsed_s <= high:
            failures.append(f"{name} on {framework}: {statuses}, closed={result.closed}, after {result.elapsed_s:.2f} s")
        if expected and result.answers[-1].body != {"error": "request_timeout", "detail": "the request was not received in time"}:
            failures.append(f"{name} on {framework}: {result.answers[-1]}")
    assert not failures, "\n".join(failures)
