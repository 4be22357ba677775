"""A tansu that advertises another port, and the loopback proxies that listen there.

tansu tells clients to connect to its advertised listener, so a proxy on that port sees every
connection they make, bootstrap and then the broker's (test_kafka_security: TLS in front, a SASL
SCRAM login in front; test_kafka_request_timeout: a connection that goes silent).
"""

from __future__ import annotations

import asyncio
import io
import ssl
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiokafka.protocol.admin import (
    SaslAuthenticateRequest_v0,
    SaslAuthenticateResponse_v0,
    SaslAuthenticateResponse_v1,
    SaslHandShakeRequest_v1,
    SaslHandShakeResponse_v1,
)
from aiokafka.protocol.api import Response, ResponseHeader_v0
from aiokafka.protocol.types import Int16, Int32, Schema, String
from scramp import ScramException, ScramMechanism

from wirewatch.local.servers import die_with_parent, free_port, tansu_binary, wait_for_tcp

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

    async def _open_target(
        self, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to ``target`` for the client's, or None (the client's closed) if refused."""
        try:
            return await asyncio.open_connection(*self.target)
        except OSError:
            client.close()
            return None

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


P = TypeVar("P", bound=LoopbackProxy)


@dataclass
class ProxiedBroker(Generic[P]):
    """A plain tansu that advertises ``proxy``'s port: every connection its clients open goes
    through the proxy."""

    port: int  # the proxy's: the only address clients are given and told about
    proxy: P
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def close(self) -> None:
        self.proxy.close()
        stop_process(self.process)


def start_proxied_broker(make_proxy: Callable[[int, tuple[str, int]], P]) -> ProxiedBroker[P]:
    """A tansu on a free port behind ``make_proxy(port, (host, tansu's port))``."""
    inner, outer = free_port(), free_port()
    process = start_tansu(inner, outer)
    try:
        proxy = make_proxy(outer, (HOST, inner))
    except Exception:
        stop_process(process)
        raise
    return ProxiedBroker(outer, proxy, process)


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until either ends, then close ``sink``."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:  # ssl.SSLError included
        pass
    finally:
        sink.close()


# --- a SASL SCRAM login in front of tansu -------------------------------------------------

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_HANDSHAKE, API_VERSIONS, SASL_AUTHENTICATE = 17, 18, 36  # Kafka API keys
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58  # Kafka error codes
# Request header v1; v2 (flexible requests) adds tagged fields after these, which are not read here.
REQUEST_HEADER = Schema(
    ("api_key", Int16), ("api_version", Int16), ("correlation_id", Int32), ("client_id", String("utf-8"))
)


class SaslScramProxy(LoopbackProxy):
    """A Kafka listener that requires a SASL SCRAM-SHA-256 or SCRAM-SHA-512 login as one of
    ``users`` (name to password) before it pipes a connection to ``target``, a plain tansu.

    It exists because no broker that runs here can hold SCRAM users: tansu ``--authentication``
    runs SCRAM but its users cannot be created from outside, and noida-db's Kafka has no SASL.
    The SCRAM verification is scramp's (an independent implementation, pg8000's); the Kafka
    behind it is real tansu. Like the TLS-terminating proxy, only the security layer is in front.

    Per connection, before login: ApiVersions is forwarded to tansu (whose answer lists
    SaslHandshake v0-1 and SaslAuthenticate v0-2); SaslHandshake v1 and SaslAuthenticate v0/v1
    (what aiokafka, and so Faust, sends) are answered here as Apache Kafka answers them: an
    unknown mechanism gets UNSUPPORTED_SASL_MECHANISM, a wrong user or password
    SASL_AUTHENTICATION_FAILED with a message, and the connection is closed. Any other request
    or version (SaslHandshake v0's unframed tokens, the flexible SaslAuthenticate v2) closes it
    too. After login the bytes go both ways unchanged. No re-authentication, no PLAIN. With an
    SSL ``context`` it is a SASL_SSL listener: TLS first, then the login inside it.

    ``connections`` counts the connections accepted and ``logins`` the successful logins per
    mechanism, so a test can check that every connection its clients opened logged in.
    """

    def __init__(
        self,
        port: int,
        target: tuple[str, int],
        users: Mapping[str, str],
        context: ssl.SSLContext | None = None,
    ) -> None:
        # (salt, stored key, server key, iterations) per mechanism and user, as a broker stores them
        self.credentials = {
            mechanism: {
                user: ScramMechanism(mechanism).make_auth_info(password) for user, password in users.items()
            }
            for mechanism in SCRAM_MECHANISMS
        }
        self.connections = 0
        self.logins: Counter[str] = Counter()
        super().__init__(port, target, context)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream = await self._open_target(writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            logged_in = await self._login(reader, writer, up_reader, up_writer)
        except (OSError, EOFError):  # asyncio.IncompleteReadError included: the client went away
            logged_in = False
        if not logged_in:
            writer.close()
            up_writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _login(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer the connection's requests until it logged in (True) or must be closed (False)."""
        mechanism = ""
        server = None  # scramp's ScramServer, once the handshake chose a mechanism
        step = 0  # SCRAM messages received: client-first, then client-final
        while True:
            frame = await read_frame(reader)
            body = io.BytesIO(frame)
            api_key, version, correlation_id, _client_id = REQUEST_HEADER.decode(body)
            if api_key == API_VERSIONS:
                await write_frame(up_writer, frame)
                await write_frame(writer, await read_frame(up_reader))
            elif api_key == SASL_HANDSHAKE and version == 1 and server is None:
                mechanism = SaslHandShakeRequest_v1.decode(body).mechanism
                known = mechanism in SCRAM_MECHANISMS
                code = 0 if known else UNSUPPORTED_SASL_MECHANISM
                await reply(writer, correlation_id, SaslHandShakeResponse_v1(code, list(SCRAM_MECHANISMS)))
                if not known:
                    return False
                server = ScramMechanism(mechanism).make_server(self.credentials[mechanism].__getitem__)
            elif api_key == SASL_AUTHENTICATE and version in (0, 1) and server is not None:
                # v0 and v1 requests are alike (v1 answers add a session lifetime)
                message = SaslAuthenticateRequest_v0.decode(body).sasl_auth_bytes or b""
                try:
                    if step == 0:
                        server.set_client_first(message.decode())
                        token = server.get_server_first()
                    else:
                        server.set_client_final(message.decode())
                        token = server.get_server_final()
                        self.logins[mechanism] += 1  # before the answer, with which the client goes on
                except (ScramException, KeyError, ValueError):  # KeyError: unknown user
                    refusal = (  # Apache Kafka's words
                        "Authentication failed during authentication due to invalid credentials "
                        f"with SASL mechanism {mechanism}"
                    )
                    await reply(writer, correlation_id, authenticate_response(version, error=refusal))
                    return False
                await reply(writer, correlation_id, authenticate_response(version, token.encode()))
                step += 1
                if step == 2:
                    return True
            else:
                return False  # Kafka closes a connection that sends anything else before login


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One Kafka request or response, without its int32 length."""
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def write_frame(writer: asyncio.StreamWriter, frame: bytes) -> None:
    """Send one Kafka request or response, prefixed with its int32 length."""
    writer.write(struct.pack(">i", len(frame)) + frame)
    await writer.drain()


async def reply(writer: asyncio.StreamWriter, correlation_id: int, response: Response) -> None:
    """Send ``response`` with response header v0 (the header of the non-flexible versions)."""
    await write_frame(writer, ResponseHeader_v0(correlation_id).encode() + response.encode())


def authenticate_response(version: int, token: bytes = b"", error: str | None = None) -> Response:
    """SaslAuthenticate's answer: the server's SCRAM message, or SASL_AUTHENTICATION_FAILED."""
    code = SASL_AUTHENTICATION_FAILED if error is not None else 0
    if version == 0:
        return SaslAuthenticateResponse_v0(code, error, token)
    return SaslAuthenticateResponse_v1(code, error, token, 0)  # session lifetime 0: no expiry
