"""The request bytes of one HTTP/1.1 connection, checked against RFC 9110/9112 and the Limits before any
framework parses them, so that Sanic, Tornado and aiohttp refuse the same requests with the same status at
the same moment (the body is `RecommenderApi.framework_error(status)`; the adapter answers, then closes).

`RequestStream.feed` takes the bytes as they arrive and returns what the framework may parse: whole, valid
request heads and the bytes of their bodies, in one canonical form that every framework reads alike (no
empty lines before a request, an absolute-form target as origin-form, HTTP/1.2 and later as HTTP/1.1,
one `Transfer-Encoding: chunked`, no Upgrade or unknown Expect fields, chunk sizes without extensions, no
trailer fields). The first thing wrong stops the stream: nothing from it on is passed, and
`on_refusal(status)` is called soon after, once the framework has parsed what came before. A request not
complete within `header_timeout_s` of its first byte is refused with 408.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import NamedTuple

from servers.core.limits import Limits

# The statuses chosen where RFC 9110/9112 leave a choice or name a status the core's refusals do not have.
BAD_REQUEST = 400  # malformed syntax, conflicting or invalid framing (RFC 9112 §2.2, §3, §5, §6.1, §6.3, §7)
# RFC 9110 §9.1 prefers 501 for a method the server does not recognise (methods are case-sensitive, so
# `get` is one); the core's refusals (api.REFUSALS) have no 501, and 400 is what llhttp, aiohttp's parser,
# answers: every framework answers 400.
UNKNOWN_METHOD = 400
# RFC 9110 §15.6.6 allows 505 for a major version the server refuses; a request line naming HTTP/2.0 is
# no HTTP/2 (which starts with its own preface) and no HTTP/1.x message either: 400, as for any bad line.
# A higher minor version (HTTP/1.2) is served as HTTP/1.1 (RFC 9112 §2.3).
UNSUPPORTED_VERSION = 400
UNKNOWN_CODING = 400  # RFC 9112 §6.1 prefers 501 for a transfer coding not understood; see UNKNOWN_METHOD
TOO_LARGE = 413  # a Content-Length or a chunk size past max_body_bytes, answered at once (RFC 9110 §15.5.14)
TOO_MANY_FIELDS = 431  # more than max_headers header (or trailer) fields, a trailer section too big (RFC 6585 §5)

# Every method the server knows: GET, HEAD and POST are served; the others get 405 from the route (RFC
# 9110 §9.1). CONNECT is left out: its authority-form target names no resource of an origin server.
METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH"))
MAX_QUERY_FIELDS = 1000  # a query with more fields than this: 400
MAX_CHUNK_LINE = 4096  # a chunk-size line, extensions included: longer is 400
CHUNKED = -1  # the body length of a chunked request

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
REQUEST_LINE = re.compile(rb"(%s) ([!-~]+) HTTP/([0-9]\.[0-9])" % TOKEN)  # single spaces, no CTL
FIELD_LINES = re.compile(rb"(?:%s:[\t\x20-\x7e\x80-\xff]*\r\n)*" % TOKEN)  # no space before ':', no obs-fold
FRAMING_FIELDS = (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
FRAMING_FIELD = re.compile(rb"\r\n(%s):[ \t]*([^\r]*?)[ \t]*(?=\r\n)" % b"|".join(FRAMING_FIELDS), re.I)
TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:[^\r]*", re.I)
UPGRADE = re.compile(rb"\r\nupgrade:[^\r]*", re.I)
UNKNOWN_EXPECTATION = re.compile(rb"\r\nexpect:(?![ \t]*100-continue[ \t]*\r)[^\r]*", re.I)
# a NUL or other control byte, a CR not followed by LF (unless last), an LF not preceded by CR (bare LF)
BAD_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n|\Z)|(?<!\r)\n")
PATH = rb"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*"  # RFC 3986 characters (pct-encoding is the core's to decode)
QUERY = rb"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*"
AUTHORITY = rb"[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9\-._~!$&'()*+,;=:@%\[\]]*"  # scheme://authority
TARGET = re.compile(rb"(" + AUTHORITY + rb")?" + PATH + rb"(?:\?" + QUERY + rb")?|\*")  # no fragment
HOST = re.compile(rb"(?:[\[\]:A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*(?::[0-9]*)?")  # RFC 9110 §7.2
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*" % (TOKEN, TOKEN, QUOTED))
HEX = b"0123456789abcdefABCDEF"


class Head(NamedTuple):
    refusal: int | None  # the status a bad head gets
    length: int = 0  # its body: 0 (none), a Content-Length, or CHUNKED
    text: bytes = b""  # the head as the framework gets it
    last: bool = False  # the connection closes after this request's reply: nothing after it is read


def oversize_status(start: bytes, max_header_bytes: int) -> int:
    """A head over max_header_bytes: 414 if its request line alone is (no line end in `start`), else 431."""
    return 431 if b"\n" in start[:max_header_bytes] else 414


def request_line_refusal(method: bytes, target: bytes, version: bytes) -> int | None:
    if not version.startswith(b"1."):
        return UNSUPPORTED_VERSION
    if method not in METHODS:
        return UNKNOWN_METHOD
    if TARGET.fullmatch(target) is None or (target == b"*" and method != b"OPTIONS"):
        return BAD_REQUEST  # not origin-, absolute- (with a path) or asterisk-form (OPTIONS only)
    if target.partition(b"?")[2].count(b"&") >= MAX_QUERY_FIELDS:
        return BAD_REQUEST
    return None


def partial_head_refusal(start: bytes, limits: Limits) -> int | None:
    """What an incomplete head (no blank line yet) already deserves: a bad byte, a bad request line, a bad
    or surplus field line, or more bytes than max_header_bytes; None while it may still turn out well."""
    if len(start) >= limits.max_header_bytes:  # its end can no longer come within the limit
        return oversize_status(start, limits.max_header_bytes)
    if BAD_BYTE.search(start):
        return BAD_REQUEST
    line_end = start.find(b"\r\n")
    if line_end == -1:
        return None
    line = REQUEST_LINE.fullmatch(start, 0, line_end)
    if line is None:
        return BAD_REQUEST
    if (refusal := request_line_refusal(*line.groups())) is not None:
        return refusal
    fields_end = valid_fields_end(start, line_end + 2)
    if start.count(b"\r\n", line_end + 2, fields_end) > limits.max_headers:
        return TOO_MANY_FIELDS
    return BAD_REQUEST if b"\r\n" in start[fields_end:] else None


def valid_fields_end(data: bytes, pos: int) -> int:
    """Where the run of whole, valid field lines from `pos` ends."""
    fields = FIELD_LINES.match(data, pos)  # `*`: always matches
    return fields.end() if fields is not None else pos


def check_head(head: bytes, limits: Limits) -> Head:
    """A whole head (request line, fields, blank line; at most max_header_bytes) against RFC 9112 and the
    limits: its refusal, or its body's length and its canonical text. The two grammar matches also refuse
    every control byte, bare CR and bare LF."""
    line_end = head.find(b"\r\n")
    line = REQUEST_LINE.fullmatch(head, 0, line_end)
    if line is None or FIELD_LINES.fullmatch(head, line_end + 2, len(head) - 2) is None:
        return Head(BAD_REQUEST)
    method, target, version = line.groups()
    if (refusal := request_line_refusal(method, target, version)) is not None:
        return Head(refusal)
    if version > b"1.1":  # read as HTTP/1.1, by every framework
        version, head = b"1.1", head[: line_end - 3] + b"1.1" + head[line_end:]
    if head.count(b"\r\n", line_end + 2) - 1 > limits.max_headers:
        return Head(TOO_MANY_FIELDS)
    found: dict[bytes, list[bytes]] = {}
    for name, value in FRAMING_FIELD.findall(head, line_end):
        found.setdefault(name.lower(), []).append(value)
    hosts, lengths, encodings = found.get(b"host", []), found.get(b"content-length", []), found.get(b"transfer-encoding")
    if len(hosts) > 1 or (not hosts and version == b"1.1") or (hosts and HOST.fullmatch(hosts[0]) is None):
        return Head(BAD_REQUEST)  # RFC 9112 §3.2
    last = is_last_request(version, found.get(b"connection", []))
    if b"expect" in found and any(value.lower() != b"100-continue" for value in found[b"expect"]):
        head = UNKNOWN_EXPECTATION.sub(b"", head)  # ignored (RFC 9110 §10.1.1 allows it; Sanic would 417)
    if b"upgrade" in found:  # no other protocol is spoken here: ignored (RFC 9110 §7.8), by every framework
        head = UPGRADE.sub(b"", head)
    if encodings:
        return chunked_head(head, version, lengths, encodings, last)
    if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and lengths[0].isascii())):
        return Head(BAD_REQUEST)  # RFC 9112 §6.3: one Content-Length, 1*DIGIT
    length = int(lengths[0]) if lengths else 0
    if length > limits.max_body_bytes:
        return Head(TOO_LARGE)
    return Head(None, length, origin_form(head, target), last)


def is_last_request(version: bytes, connection: list[bytes]) -> bool:
    """Whether the connection closes after this request's reply, by its version and Connection fields:
    HTTP/1.1 persists unless `close`, HTTP/1.0 only with `keep-alive` (RFC 9112 §9.3, §9.6)."""
    if not connection:
        return version == b"1.0"
    options = {option.strip(b" \t").lower() for value in connection for option in value.split(b",")}
    return b"close" in options or (version == b"1.0" and b"keep-alive" not in options)


def chunked_head(head: bytes, version: bytes, lengths: list[bytes], encodings: list[bytes], last: bool) -> Head:
    """A head with Transfer-Encoding: chunked alone is good (RFC 9112 §6.1), written as one canonical field."""
    codings = [coding.strip(b" \t").lower() for value in encodings for coding in value.split(b",")]
    if version == b"1.0" or lengths:  # RFC 9112 §6.1: faulty framing, and smuggling's favourite
        return Head(BAD_REQUEST)
    if [coding for coding in codings if coding] != [b"chunked"]:
        return Head(UNKNOWN_CODING)
    # one field, `chunked` exactly: Sanic reads no other form (`Chunked`, trailing spaces, two fields)
    head = TRANSFER_ENCODING.sub(b"", head)[:-2] + b"Transfer-Encoding:chunked\r\n\r\n"
    return Head(None, CHUNKED, origin_form(head, head[: head.find(b"\r\n")].split(b" ")[1]), last)


def origin_form(head: bytes, target: bytes) -> bytes:
    """`head` with an absolute-form target written as origin-form (RFC 9112 §3.2.2: the authority is the
    target's, not Host's; the core uses neither)."""
    if target[0] == 47 or target == b"*":  # 47: "/", origin-form
        return head
    form = TARGET.fullmatch(target)
    assert form is not None and form.group(1) is not None
    return head.replace(target, target[form.end(1) :], 1)


Step = Callable[[bytes, int, list[bytes]], "int | None"]


class RequestStream:
    """One connection's request bytes in order: what the framework may parse, and when to refuse."""

    def __init__(self, limits: Limits, on_refusal: Callable[[int], None], loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.on_refusal = on_refusal
        self.refusal: int | None = None  # the status the stream was stopped with (0: the connection is gone)
        self.in_body = False  # the current request's head has been passed on, its body not yet all
        self._loop = loop
        self._held = b""  # an incomplete head, chunk line or trailer section, kept until whole
        self._step: Step = self._head
        self._last = False  # the current request is the connection's last
        self._left = 0  # bytes still due of a Content-Length body or of a chunk
        self._announced = 0  # chunk sizes so far
        self._started: float | None = None  # loop time of the current request's first byte
        self._timer: asyncio.TimerHandle | None = None

    @property
    def receiving(self) -> bool:
        """A request's first byte has arrived, its last not yet."""
        return self._started is not None

    @property
    def held(self) -> int:
        """How many bytes received are kept back (they come out with later ones)."""
        return len(self._held)

    def feed(self, data: bytes) -> bytes:
        """The bytes received next; returns what the framework may parse now."""
        if self.refusal is not None:
            return b""
        buf, self._held = self._held + data if self._held else data, b""
        out: list[bytes] = []
        pos = 0
        while pos < len(buf):
            step = self._step(buf, pos, out)
            if step is None:
                if self.refusal is None:
                    self._held = buf[pos:]
                break
            pos = step
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> None:
        """The connection is gone: no more timing."""
        self.refusal = self.refusal or 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, status: int) -> int | None:
        """Stops the stream with `status`; None, for a step to return (it ends there)."""
        self.refusal = status
        self._loop.call_soon(self.on_refusal, status)
        return None

    def _begin(self) -> None:
        if self._started is None:
            self._started = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_at(self._started + self.limits.header_timeout_s, self._clock)

    def _end(self) -> None:
        self._started, self.in_body = None, False
        self._step = self._after_last if self._last else self._head

    def _after_last(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        """Bytes after a connection's last request: never a request (RFC 9112 §9.6), dropped."""
        return len(buf)

    def _clock(self) -> None:
        """The request being received, if any, is past its time (408), or the timer moves to its due time."""
        self._timer = None
        if self._started is None or self.refusal is not None:
            return
        due = self._started + self.limits.header_timeout_s
        if self._loop.time() < due:  # a later request than the one the timer was set for
            self._timer = self._loop.call_at(due, self._clock)
            return
        self.refusal = 408
        self.on_refusal(408)

    def _head(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        while buf.startswith(b"\r\n", pos):  # empty lines before a request line are ignored (RFC 9112 §2.2)
            pos += 2
        if pos == len(buf):
            return pos
        if pos == len(buf) - 1 and buf[pos] == 13:  # a CR that may start an empty line
            return None
        self._begin()
        limit = self.limits.max_header_bytes
        end = buf.find(b"\r\n\r\n", pos, pos + limit)
        if end == -1:
            if (refusal := partial_head_refusal(buf[pos : pos + limit], self.limits)) is not None:
                self._refuse(refusal)
            return None
        head = check_head(buf[pos : end + 4], self.limits)
        if head.refusal is not None:
            self._refuse(head.refusal)
            return None
        out.append(head.text)
        self._last = head.last
        if head.length == CHUNKED:
            self._announced, self._step, self.in_body = 0, self._chunk_size, True
        elif head.length:
            self._left, self._step, self.in_body = head.length, self._fixed_body, True
        else:
            self._end()
        return end + 4

    def _take(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """Pass on what is here of the `_left` body bytes still to come; where the reading stopped."""
        take = min(self._left, len(buf) - pos)
        out.append(buf[pos : pos + take])
        self._left -= take
        return pos + take

    def _fixed_body(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        pos = self._take(buf, pos, out)
        if not self._left:
            self._end()
        return pos

    def _chunk_size(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        end = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE)
        digits = buf[pos : end if end != -1 else len(buf)]
        digits = digits[: len(digits) - len(digits.lstrip(HEX))]
        if digits and self._announced + int(digits, 16) > self.limits.max_body_bytes:
            return self._refuse(TOO_LARGE)  # answered as soon as the size says so
        if end == -1:
            if len(buf) - pos >= MAX_CHUNK_LINE or BAD_BYTE.search(buf, pos):
                self._refuse(BAD_REQUEST)
            return None
        if not digits or CHUNK_LINE.fullmatch(buf, pos, end) is None:  # RFC 9112 §7.1, §7.1.1
            return self._refuse(BAD_REQUEST)
        size = int(digits, 16)
        self._announced += size
        out.append(b"%x\r\n" % size)  # extensions dropped: a recipient ignores those it does not know
        self._left, self._step = size, self._chunk_data if size else self._trailers
        return end + 2

    def _chunk_data(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        pos = self._take(buf, pos, out)
        if not self._left:
            self._step = self._chunk_end
        return pos

    def _chunk_end(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        if not b"\r\n".startswith(buf[pos : pos + 2]):
            return self._refuse(BAD_REQUEST)
        if len(buf) - pos < 2:
            return None
        out.append(b"\r\n")
        self._step = self._chunk_size
        return pos + 2

    def _trailers(self, buf: bytes, pos: int, out: list[bytes]) -> int | None:
        """The trailer section after the last chunk: checked as header fields are, then dropped
        (RFC 9112 §7.1.2 lets a recipient discard them; Sanic and Tornado refuse any)."""
        limit = self.limits.max_header_bytes
        end = -2 if buf.startswith(b"\r\n", pos) else buf.find(b"\r\n\r\n", pos, pos + limit)
        section = b"" if end == -2 else buf[pos : pos + limit] if end == -1 else buf[pos : end + 2]
        lines_end = section.rfind(b"\r\n") + 2 if b"\r\n" in section else 0  # the whole lines so far
        if len(section) >= limit:
            return self._refuse(TOO_MANY_FIELDS)
        if BAD_BYTE.search(section) or valid_fields_end(section, 0) < lines_end:
            return self._refuse(BAD_REQUEST)
        if section.count(b"\r\n") > self.limits.max_headers:
            return self._refuse(TOO_MANY_FIELDS)
        if end == -1:
            return None
        out.append(b"\r\n")
        self._end()
        return pos + len(section) + 2
