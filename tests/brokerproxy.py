"""A tansu that advertises another port, and the loopback proxies that listen there.

tansu tells clients to connect to its advertised listener, so a proxy on that port sees every
connection they make, bootstrap and then the broker's (test_kafka_security: TLS in front;
test_kafka_request_timeout: a connection that goes silent).
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading

from wirewatch.local.servers import die_with_parent, tansu_binary, wait_for_tcp

HOST = "127.0.0.1"


def start_tansu(listen: int, advertise: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", f"tcp://{HOST}:{listen}",
         "--advertised-listener-url", f"tcp://{HOST}:{advertise}", "--storage-engine", "memory://tansu/",
         *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )  # fmt: skip
    try:
        wait_for_tcp(HOST, listen, 30, proc)
    except Exception:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class LoopbackProxy:
    """Listens on ``port`` (in a thread of its own, with its own event loop) and hands each
    connection to :meth:`_handle`, which pipes it to ``target``."""

    def __init__(self, port: int, target: tuple[str, int], context: ssl.SSLContext | None = None) -> None:
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name=f"{type(self).__name__}-{port}", daemon=True
        )
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, HOST, port, ssl=context), self.loop
        ).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
