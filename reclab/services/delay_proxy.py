"""User-space network delay between the server and its database or cache (this kernel has no netem).

A TCP proxy on 127.0.0.1 that holds every chunk going from client to server for `--delay-ms`
before forwarding it; replies pass straight through. One request-reply exchange therefore gains
about `delay` (timer granularity is about 1 ms); the lab measures the real added delay.

Run: python -m reclab.services.delay_proxy --listen-port P --target-port Q --delay-ms D
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

HOST = "127.0.0.1"
CHUNK = 1 << 16


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def receive() -> None:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay_s, data))
        queue.put_nowait(None)

    receiving = asyncio.create_task(receive())
    try:
        while (item := await queue.get()) is not None:
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
    finally:
        receiving.cancel()
        with contextlib.suppress(Exception):
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen_port: int, target_port: int, delay_ms: float) -> None:
    delay_s = delay_ms / 1000.0

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, target_port)
        except OSError:
            client_writer.close()
            return
        upstream = _forward(client_reader, server_writer, delay_s)  # 0 ms too: the control takes the same path
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await asyncio.gather(upstream, _pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, HOST, listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.listen_port, args.target_port, args.delay_ms))
    except ImportError:
        asyncio.run(serve(args.listen_port, args.target_port, args.delay_ms))


if __name__ == "__main__":
    main()
