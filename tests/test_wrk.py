"""wrk as the second generator of `reclab hotpath`: its report is read right, and its script replays
the request stream in order (against a small HTTP server in this test, when wrk is installed)."""

from __future__ import annotations

import collections
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reclab.errors import GeneratorError
from reclab.host.processes import ProcessGroup
from reclab.load.wrk import parse_report, run_wrk

REPORT = """Running 4s test @ http://127.0.0.1:8111
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.23ms   16.67ms  94.04ms   56.38%
    Req/Sec   808.25    167.78     1.09k    67.50%
  3219 requests in 4.00s, 6.56MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:    804.18
Transfer/sec:      1.64MB
"""


def test_a_report_gives_requests_bad_answers_and_socket_errors() -> None:
    window = parse_report(REPORT, Path("wrk.txt"))
    assert (window.requests, window.bad_status, window.socket_errors, window.ok) == (3219, 7, 3, 3212)


def test_a_clean_report_has_no_errors() -> None:
    clean = "\n".join(line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line)
    assert parse_report(clean, Path("wrk.txt")).ok == 3219


def test_output_without_a_count_is_an_error_naming_the_log() -> None:
    with pytest.raises(GeneratorError, match=r"wrk\.txt"):
        parse_report("unable to connect to 127.0.0.1:1 Connection refused\n", Path("wrk.txt"))


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian's wrk package)")
def test_wrk_replays_the_stream_in_order_from_the_line_given(tmp_path: Path) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with lock:
                seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stream = tmp_path / "stream.txt"
    stream.write_text("/a\t0.1\n/b\n/c\n")  # a tab ends the path, as in the lab's trace streams
    try:
        with ProcessGroup() as group:
            window = run_wrk(
                group, f"http://127.0.0.1:{server.server_address[1]}", stream, connections=1, seconds=1.0, start=1,
                log_path=tmp_path / "wrk.txt", cores=None,
            )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert window.requests > 3 and window.bad_status == 0
    assert seen[:4] == ["/b", "/c", "/a", "/b"]  # from line 1, then around again
    counts = collections.Counter(seen[: len(seen) // 3 * 3])
    assert set(counts) == {"/a", "/b", "/c"} and max(counts.values()) - min(counts.values()) <= 1
