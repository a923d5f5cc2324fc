"""User-space network delay between the server and its database or cache (this kernel has no netem),
and the network faults of the fault matrix.

A TCP proxy on 127.0.0.1 that holds every chunk going from client to server for `--delay-ms`
before forwarding it; replies pass straight through. One request-reply exchange therefore gains
about `delay` (timer granularity is about 1 ms); the lab measures the real added delay.

A control port (`--control-port`) takes one command per line and answers `ok` or `error ...`:
- `pass`: normal forwarding (with the configured delay);
- `slow MS`: `MS` more delay on every exchange;
- `stall`: nothing moves in either direction, and new connections are accepted but not served
  (as a stopped process whose kernel still accepts), until `pass`;
- `refuse`: the listening socket is closed (new connections are refused) and open connections are
  reset, until `pass` listens again on the same port.

Run: python -m reclab.services.delay_proxy --listen-port P --target-host H --target-port Q --delay-ms D
                                           [--control-port C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

HOST = "127.0.0.1"
CHUNK = 1 << 16
MODES = ("pass", "slow", "stall", "refuse")


class Proxy:
    """The forwarding state: target, delay, mode, and the connections open now."""

    def __init__(self, listen_port: int, target_host: str, target_port: int, delay_ms: float) -> None:
        self.listen_port = listen_port
        self.target = (target_host, target_port)
        self.delay_s = delay_ms / 1000.0
        self.extra_s = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def listen(self) -> None:
        self.server = await asyncio.start_server(self.handle, HOST, self.listen_port, reuse_address=True)

    async def set_mode(self, mode: str, extra_ms: float = 0.0) -> None:
        self.extra_s = extra_ms / 1000.0 if mode == "slow" else 0.0
        if mode == "stall":
            self.flowing.clear()
            return
        if mode == "refuse":
            if self.server is not None:
                self.server.close()
                self.server = None
            for writer in list(self.writers):
                writer.transport.abort()
            self.flowing.set()
            return
        self.flowing.set()
        if self.server is None:
            await self.listen()

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.writers.add(client_writer)
        try:
            await self.flowing.wait()  # a stalled service: the connection is accepted, nothing answers
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.target)
            except OSError:
                client_writer.transport.abort()
                return
            self.writers.add(server_writer)
            try:
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await asyncio.gather(self._forward(client_reader, server_writer), self._pipe(server_reader, client_writer))
            finally:
                self.writers.discard(server_writer)
        finally:
            self.writers.discard(client_writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server: each chunk held for the delay (0 ms too: the control takes the same path)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def receive() -> None:
            while data := await reader.read(CHUNK):
                queue.put_nowait((loop.time() + self.delay_s + self.extra_s, data))
            queue.put_nowait(None)

        receiving = asyncio.create_task(receive())
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not self.flowing.is_set():
                    await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            receiving.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                if not self.flowing.is_set():
                    await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def control(proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One control connection: `pass`, `slow MS`, `stall` or `refuse`, one per line."""
    try:
        while line := await reader.readline():
            words = line.decode(errors="replace").split()
            try:
                mode = words[0] if words else ""
                if mode not in MODES or len(words) != (2 if mode == "slow" else 1):
                    raise ValueError(f"expected one of: pass, slow MS, stall, refuse; got {line!r}")
                await proxy.set_mode(mode, float(words[1]) if mode == "slow" else 0.0)
                writer.write(b"ok\n")
            except (ValueError, OSError) as error:
                writer.write(f"error {error}\n".encode())
            await writer.drain()
    finally:
        writer.close()


async def serve(listen_port: int, target_host: str, target_port: int, delay_ms: float, control_port: int | None) -> None:
    proxy = Proxy(listen_port, target_host, target_port, delay_ms)
    await proxy.listen()
    controller = None
    if control_port is not None:
        controller = await asyncio.start_server(lambda r, w: control(proxy, r, w), HOST, control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for server in (proxy.server, controller):
            if server is not None:
                server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-host", default=HOST)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--control-port", type=int, default=None)
    args = parser.parse_args()
    run = serve(args.listen_port, args.target_host, args.target_port, args.delay_ms, args.control_port)
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:
        asyncio.run(run)


if __name__ == "__main__":
    main()
