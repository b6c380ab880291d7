"""A TLS-terminating TCP proxy on loopback, so the client's ``rediss://`` path meets real TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def tls_proxy(context: ssl.SSLContext, target_port: int) -> Iterator[int]:
    """Accept TLS on a free 127.0.0.1 port and forward plain bytes to ``target_port``; yields the port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box: list[int] = []

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    async def main(stop: asyncio.Event) -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    stop_event: asyncio.Event | None = None

    def run() -> None:
        nonlocal stop_event
        asyncio.set_event_loop(loop)
        stop_event = asyncio.Event()
        loop.run_until_complete(main(stop_event))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("TLS proxy did not start")
    try:
        yield port_box[0]
    finally:
        assert stop_event is not None
        loop.call_soon_threadsafe(stop_event.set)
        thread.join(10)
        loop.close()
