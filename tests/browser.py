"""A real browser for tests of the lab's HTML pages: headless Debian Chromium, driven by Playwright, offline.

`offline_page(path)` opens a local file in a fresh browser with every request but `file://` aborted
(and recorded), waits for the page to load and yields a `PageVisit`: the page, the console errors and
uncaught page errors, and the requests the page tried to make. The browser is always closed, so no
process is left behind. Without Playwright or Chromium (`/usr/bin/chromium`, or `chromium` on PATH)
the test that asked for a page is skipped, saying which is missing.

The sync API refuses to run inside a running event loop: use it from plain (sync) test functions;
pytest-asyncio (asyncio_mode=auto) runs those outside its loop.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import playwright.sync_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--metrics-recording-only",
]
LAUNCH_TIMEOUT_MS = 60_000  # a busy 2-core machine (another benchmark, the other tests) starts Chromium slowly
LOAD_TIMEOUT_MS = 30_000
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")  # not the network: data and blob URLs never leave the page


@dataclass
class PageVisit:
    page: playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)  # console messages of type "error" and uncaught page errors
    requests: list[str] = field(default_factory=list)  # every request to anything but file:// (all of them aborted)


def chromium_executable() -> Path | None:
    """Debian's Chromium: /usr/bin/chromium, else `chromium` on PATH; None when neither is there."""
    if CHROMIUM.is_file():
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


@contextmanager
def offline_page(path: Path, width: int = 1400, height: int = 900) -> Iterator[PageVisit]:
    """Open `path` (a local HTML file) offline in headless Chromium; yield once it has loaded."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; it is in the dev extra)")
    executable = chromium_executable()
    if executable is None:
        pytest.skip(f"Chromium is not installed ({CHROMIUM} or `chromium` on PATH; Debian: apt-get install chromium)")
    url = Path(path).resolve().as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
            page = context.new_page()
            visit = PageVisit(page)

            def on_request(request: playwright.sync_api.Request) -> None:
                if not request.url.startswith(LOCAL_SCHEMES):
                    visit.requests.append(request.url)

            def on_route(route: playwright.sync_api.Route) -> None:
                if route.request.url.startswith(LOCAL_SCHEMES):
                    route.continue_()
                else:
                    route.abort("internetdisconnected")

            def on_console(message: playwright.sync_api.ConsoleMessage) -> None:
                if message.type == "error":
                    visit.console_errors.append(message.text)

            context.on("request", on_request)
            context.route("**/*", on_route)
            page.on("console", on_console)
            page.on("pageerror", lambda error: visit.console_errors.append(f"uncaught: {error}"))
            page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
            yield visit
        finally:
            browser.close()
