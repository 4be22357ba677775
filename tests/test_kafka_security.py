"""Kafka security (issue 7): the TLS and SASL settings, the one place they become client options
(``wirewatch.core.kafka.client_options`` and, for Faust, ``faust_credentials``), and real
connections through TLS and SASL SCRAM logins.

TLS: tansu (the test broker) has no TLS listener (its ``--cert`` flag is accepted, but the
listener stays plain TCP), so each TLS broker here is a tansu whose advertised listener is the
port of a TLS-terminating proxy in front of it (asyncio + ssl, on loopback). Every connection
the clients make, bootstrap and then the advertised broker's, goes through TLS: a plain client
is refused, and the proxy counts the handshakes. Certificates are made with the openssl
command, as in test_alert_delivery.py (the TLS tests are skipped without it).

SASL: no broker that runs here can hold SCRAM users. tansu ``--authentication`` runs real
SCRAM-SHA-256/512 exchanges (it offers no PLAIN), but its users can only be created through the
broker itself (AlterUserScramCredentials), which an authenticating broker refuses before login,
and its memory store cannot be shared with an open second broker; noida-db's Kafka has no SASL.
So one test shows tansu's own SCRAM refusing the client's login with a clear error, and the
logins that succeed go through a SASL front (brokerproxy.SaslScramProxy) on the port a plain
tansu advertises, as the TLS proxy does: it answers SaslHandshake and SaslAuthenticate as Apache
Kafka does, with the SCRAM server side done by scramp (an independent implementation, pg8000's),
and pipes each connection to tansu once it logged in. With wirewatch's settings, SCRAM-SHA-512
and SCRAM-SHA-256 logins are followed by topics created, a message produced and read back, the
front counting a login with that mechanism for every connection the clients opened (bootstrap
and the advertised broker's); Faust's producer logs in with ``faust_credentials``; a wrong
password (in neither the error nor the logs) and a mechanism the broker does not offer fail at
once with a clear error; a client without SASL gets nothing. The same front behind TLS is a
SASL_SSL listener: SCRAM-SHA-512 inside TLS for the command-line clients and Faust's producer, and
nothing for a client that does not speak TLS. The options handed to aiokafka and Faust are also
checked field by field.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import shutil
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from brokerproxy import (
    HOST,
    LoopbackProxy,
    ProxiedBroker,
    SaslScramProxy,
    pipe,
    start_proxied_broker,
    start_tansu,
    stop_process,
)
from conftest import make_settings
from wirewatch.core.app import ServiceApp
from wirewatch.core.kafka import (
    KafkaSecurityError,
    KafkaUnavailableError,
    client_options,
    create_topics,
    faust_credentials,
    produce,
    read_topic,
    topic_stats,
    wait_for_kafka,
)
from wirewatch.core.settings import Settings
from wirewatch.fetcher.backfill import request_backfill
from wirewatch.fetcher.feedsync import read_feeds_topic
from wirewatch.local.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Scram-pw"
KEY_PASSWORD = "client-key-pass"


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    server: Path  # self-signed (its own CA), for IP 127.0.0.1 only
    server_key: Path
    other_ca: Path  # an unrelated CA: the wrong one
    client: Path  # self-signed client certificate, trusted by the mutual-TLS proxy
    client_key: Path  # encrypted with KEY_PASSWORD
    key_password_file: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("kafka-tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1"]
    _openssl("req", "-x509", *ec, "-nodes", "-keyout", str(folder / "server-key.pem"),
             "-out", str(folder / "server.pem"), "-subj", "/CN=wirewatch test broker",
             "-addext", f"subjectAltName=IP:{HOST}")  # fmt: skip
    _openssl("req", "-x509", *ec, "-nodes", "-keyout", str(folder / "other-key.pem"),
             "-out", str(folder / "other.pem"), "-subj", "/CN=some other CA")  # fmt: skip
    _openssl("req", "-x509", *ec, "-keyout", str(folder / "client-key.pem"),
             "-passout", f"pass:{KEY_PASSWORD}",
             "-out", str(folder / "client.pem"), "-subj", "/CN=wirewatch")  # fmt: skip
    (folder / "key-password").write_text(KEY_PASSWORD + "\n")
    return Certificates(
        server=folder / "server.pem",
        server_key=folder / "server-key.pem",
        other_ca=folder / "other.pem",
        client=folder / "client.pem",
        client_key=folder / "client-key.pem",
        key_password_file=folder / "key-password",
    )


# --- a TLS-terminating proxy in front of tansu ---------------------------------------------


class TlsProxy(LoopbackProxy):
    """Accepts TLS on ``port`` and pipes the plain bytes to ``target``."""

    def __init__(self, port: int, target: tuple[str, int], context: ssl.SSLContext) -> None:
        self.handshakes = 0
        super().__init__(port, target, context)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # called once the TLS handshake succeeded
        upstream = await self._open_target(writer)
        if upstream is not None:
            up_reader, up_writer = upstream
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


TlsBroker = ProxiedBroker[TlsProxy]
ScramBroker = ProxiedBroker[SaslScramProxy]


def server_context(certs: Certificates) -> ssl.SSLContext:
    """The TLS side of a listener with the test broker's certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.server, certs.server_key)
    return context


def start_tls_broker(certs: Certificates, *, client_ca: Path | None = None) -> TlsBroker:
    context = server_context(certs)
    if client_ca is not None:  # mutual TLS: a client certificate signed by client_ca is required
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return start_proxied_broker(lambda port, target: TlsProxy(port, target, context))


@pytest.fixture(scope="module")
def tls_broker(certs: Certificates) -> Iterator[TlsBroker]:
    broker = start_tls_broker(certs)
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def mtls_broker(certs: Certificates) -> Iterator[TlsBroker]:
    broker = start_tls_broker(certs, client_ca=certs.client)
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[str]:
    """A tansu that requires SASL (SCRAM-SHA-256/512) authentication; its bootstrap address."""
    port = free_port()
    process = start_tansu(port, port, "--authentication")
    yield f"{HOST}:{port}"
    stop_process(process)


def start_scram_broker(context: ssl.SSLContext | None = None) -> Iterator[ScramBroker]:
    broker = start_proxied_broker(
        lambda port, target: SaslScramProxy(port, target, {"alice": PASSWORD}, context)
    )
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def scram_broker() -> Iterator[ScramBroker]:
    """A plain tansu behind a SASL front where "alice" logs in with PASSWORD (SCRAM-SHA-256/512)."""
    yield from start_scram_broker()


@pytest.fixture(scope="module")
def scram_tls_broker(certs: Certificates) -> Iterator[ScramBroker]:
    """The same behind TLS: a SASL_SSL listener, the login inside the TLS connection."""
    yield from start_scram_broker(server_context(certs))


async def refused_at_once(settings: Settings) -> str:
    """The message of the ``KafkaSecurityError`` that connecting with ``settings`` raises, which
    must come at once (within 10 s), not after retrying for the whole timeout."""
    started = time.monotonic()
    with pytest.raises(KafkaSecurityError) as caught:
        await wait_for_kafka(settings, timeout=30)
    assert time.monotonic() - started < 10
    return str(caught.value)


def tls_settings(broker: TlsBroker | str, cafile: Path, tmp_path: Path, **values: Any) -> Settings:
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap
    return make_settings(
        kafka_bootstrap=bootstrap,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=cafile,
        topic_partitions=1,
        data_dir=tmp_path / "data",
        **values,
    )


def sasl_values(tmp_path: Path, mechanism: str = "SCRAM-SHA-512", **values: Any) -> dict[str, Any]:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    return {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": "alice",
        "kafka_sasl_password_file": secret,
        **values,
    }


# --- settings ----------------------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = make_settings(kafka_bootstrap="k1:9092,k2:9092")
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert client_options(settings) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(settings) is None


def test_sasl_ssl_from_the_environment_with_the_password_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")  # as `echo ... > file` or a Kubernetes secret leaves it
    ca = tmp_path / "ca.pem"
    ca.write_text("unused here")
    for name, value in {
        "KAFKA_BOOTSTRAP": "kafka.example.org:9093",
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",  # case does not matter
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "wirewatch",
        "KAFKA_SASL_PASSWORD_FILE": str(secret),
        "KAFKA_SSL_CAFILE": str(ca),
    }.items():
        monkeypatch.setenv(f"WIREWATCH_{name}", value)
    settings = make_settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    assert settings.kafka_ssl_cafile == ca
    assert settings.kafka_ssl_check_hostname is True


def test_a_password_given_directly_wins_over_its_file(tmp_path: Path) -> None:
    settings = make_settings(**sasl_values(tmp_path), kafka_sasl_password="direct")
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "direct"


def _invalid_cases(tmp_path: Path) -> list[tuple[dict[str, Any], list[str]]]:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    pem = tmp_path / "some.pem"
    pem.write_text("x")
    sasl = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256"}
    return [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u", "kafka_sasl_password": PASSWORD},
         ["SECURITY_PROTOCOL=SASL_SSL needs WIREWATCH_KAFKA_SASL_MECHANISM"]),
        ({**sasl}, ["WIREWATCH_KAFKA_SASL_USERNAME", "WIREWATCH_KAFKA_SASL_PASSWORD (or _FILE)"]),
        ({**sasl, "kafka_sasl_username": "u", "kafka_sasl_password_file": empty},
         ["needs WIREWATCH_KAFKA_SASL_PASSWORD (or _FILE)"]),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": PASSWORD},
         ["WIREWATCH_KAFKA_SASL_USERNAME, WIREWATCH_KAFKA_SASL_PASSWORD set", "PLAINTEXT does not use SASL"]),
        ({"kafka_ssl_cafile": pem}, ["WIREWATCH_KAFKA_SSL_CAFILE set", "PLAINTEXT does not use TLS"]),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
          "kafka_sasl_username": "u", "kafka_sasl_password": PASSWORD, "kafka_ssl_cafile": pem},
         ["SASL_PLAINTEXT does not use TLS"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": pem},
         ["needs both WIREWATCH_KAFKA_SSL_CERTFILE and WIREWATCH_KAFKA_SSL_KEYFILE"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": pem}, ["needs both"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_key_password": KEY_PASSWORD},
         ["WIREWATCH_KAFKA_SSL_KEY_PASSWORD is set without WIREWATCH_KAFKA_SSL_KEYFILE"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": tmp_path / "missing.pem"},
         ["WIREWATCH_KAFKA_SSL_CAFILE=", "missing.pem: no such file"]),
        ({"kafka_security_protocol": "TLS"}, ["kafka_security_protocol"]),
        ({**sasl, "kafka_sasl_mechanism": "GSSAPI", "kafka_sasl_username": "u",
          "kafka_sasl_password": PASSWORD},
         ["kafka_sasl_mechanism"]),
    ]  # fmt: skip


def test_impossible_combinations_are_refused_naming_the_variables(tmp_path: Path) -> None:
    for values, fragments in _invalid_cases(tmp_path):
        with pytest.raises(ValidationError) as caught:
            make_settings(kafka_bootstrap="k:9093", es_password="es-secret-pw", **values)
        text = str(caught.value)
        for fragment in fragments:
            assert fragment in text, (values, text)
        # Validation errors are printed and logged: no input value (secrets!) may be in them.
        assert PASSWORD not in text and KEY_PASSWORD not in text and "es-secret-pw" not in text, text


def sasl_ssl_settings(tmp_path: Path, certs: Certificates, bootstrap: str) -> Settings:
    """SASL over TLS with a client certificate whose key is encrypted: every secret option set."""
    return make_settings(
        kafka_bootstrap=bootstrap,
        **sasl_values(tmp_path, kafka_security_protocol="SASL_SSL"),
        kafka_ssl_cafile=certs.server,
        kafka_ssl_certfile=certs.client,
        kafka_ssl_keyfile=certs.client_key,
        kafka_ssl_key_password_file=certs.key_password_file,
    )


def test_secrets_never_show_in_reprs(tmp_path: Path, certs: Certificates) -> None:
    settings = sasl_ssl_settings(tmp_path, certs, "k:9093")
    credentials = faust_credentials(settings)
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(credentials)):
        assert PASSWORD not in text and KEY_PASSWORD not in text, text


# --- the one place: aiokafka and Faust get the same options ---------------------------------


async def test_client_options_carry_tls_and_sasl(tmp_path: Path, certs: Certificates) -> None:
    settings = sasl_ssl_settings(tmp_path, certs, "k1:9093,k2:9093")
    options = client_options(settings)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [ca["subject"] for ca in context.get_ca_certs()]
    assert subjects == [((("commonName", "wirewatch test broker"),),)]
    # aiokafka takes them as they are (it validates protocol/mechanism/credentials at construction)
    producer = AIOKafkaProducer(**client_options(settings))
    client = producer.client
    assert (client._security_protocol, client._sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("alice", PASSWORD)
    assert isinstance(client._ssl_context, ssl.SSLContext)


def test_an_encrypted_client_key_needs_its_password(certs: Certificates) -> None:
    values: dict[str, Any] = {
        "kafka_bootstrap": "k:9093",
        "kafka_security_protocol": "SSL",
        "kafka_ssl_certfile": certs.client,
        "kafka_ssl_keyfile": certs.client_key,
    }
    assert client_options(make_settings(**values, kafka_ssl_key_password_file=certs.key_password_file))
    with pytest.raises(ssl.SSLError):
        client_options(make_settings(**values, kafka_ssl_key_password="wrong"))


def test_hostname_check_can_be_turned_off(certs: Certificates) -> None:
    settings = make_settings(
        kafka_bootstrap="k:9093", kafka_security_protocol="SSL", kafka_ssl_check_hostname=False
    )
    context = client_options(settings)["ssl_context"]
    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("protocol", "with_ca", "expected_protocol"),
    [("SASL_SSL", True, "SASL_SSL"), ("SASL_PLAINTEXT", False, "SASL_PLAINTEXT")],
)
def test_faust_gets_the_same_sasl_credentials(
    tmp_path: Path, certs: Certificates, protocol: str, with_ca: bool, expected_protocol: str
) -> None:
    settings = make_settings(
        kafka_bootstrap="k1:9093",
        **sasl_values(tmp_path, kafka_security_protocol=protocol),
        **({"kafka_ssl_cafile": certs.server} if with_ca else {}),
        data_dir=tmp_path / "data",
    )
    app = ServiceApp("enricher", settings).app
    # What Faust's consumers and producers are built with (faust.transport.drivers.aiokafka).
    auth = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))
    context = auth.pop("ssl_context")
    assert auth == {
        "security_protocol": expected_protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext) if with_ca else context is None
    assert [str(url) for url in app.conf.broker] == ["kafka://k1:9093"]


def test_faust_gets_tls_without_sasl(tmp_path: Path, certs: Certificates) -> None:
    settings = make_settings(
        kafka_bootstrap="k1:9093",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=certs.server,
        data_dir=tmp_path / "data",
    )
    app = ServiceApp("indexer", settings).app
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SSL" and isinstance(auth["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in auth


KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def test_every_kafka_client_in_the_code_base_uses_client_options() -> None:
    """A new client that forgets the security options would fail only against a secured cluster."""
    found: list[str] = []
    for path in sorted((ROOT / "services" / "wirewatch").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in KAFKA_CLIENTS:
                found.append(where)
                spread = [
                    kw.value for kw in node.keywords if kw.arg is None and isinstance(kw.value, ast.Call)
                ]
                assert any(_called_name(call) == "client_options" for call in spread), (
                    f"{where}: {name}(...) must take **client_options(settings)"
                )
                assert "bootstrap_servers" not in {kw.arg for kw in node.keywords}, where
            if name == "App" and isinstance(node.func, ast.Attribute):  # faust.App(...)
                found.append(where)
                credentials = [kw.value for kw in node.keywords if kw.arg == "broker_credentials"]
                assert credentials and isinstance(credentials[0], ast.Call), where
                assert _called_name(credentials[0]) == "faust_credentials", where
    # The test does see them: core/kafka.py's six, backfill, feedsync, watchlist and the Faust app.
    files = {where.rsplit(":", 1)[0].removeprefix("services/wirewatch/") for where in found}
    assert files >= {"core/kafka.py", "core/app.py", "fetcher/backfill.py", "fetcher/feedsync.py",
                     "alerts/watchlist.py"}, found  # fmt: skip
    assert len(found) >= 10, found


# --- real TLS --------------------------------------------------------------------------------


async def test_produce_and_read_through_tls(
    tls_broker: TlsBroker, certs: Certificates, tmp_path: Path
) -> None:
    settings = tls_settings(tls_broker, certs.server, tmp_path)
    before = tls_broker.proxy.handshakes
    assert await create_topics(settings, {"secure.articles": {}}) == ["secure.articles"]
    await produce(settings, "secure.articles", [(b"a1", b"first"), (b"a2", b"second")])
    assert sorted(await read_topic(settings, "secure.articles")) == [(b"a1", b"first"), (b"a2", b"second")]
    stats = {
        s.topic: s for s in await topic_stats(settings.model_copy(update={"topic_raw": "secure.articles"}))
    }
    # (tansu reports a partition's end as its last batch's base offset + 1: one batch, one "message")
    assert stats["secure.articles"].partitions == 1 and stats["secure.articles"].messages >= 1
    # The fetcher's own clients (feedsync's consumer, the backfill producer) go through TLS too.
    assert await read_feeds_topic(settings, timeout=5) == {}
    request = await request_backfill(
        settings, "https://news.example.org/sitemap.xml", datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert [key for key, _ in await read_topic(settings, settings.topic_backfill)] == [request.id.encode()]
    assert tls_broker.proxy.handshakes > before  # every byte above went through TLS


async def test_a_plain_client_gets_nothing_from_the_tls_listener(tls_broker: TlsBroker) -> None:
    plain = make_settings(kafka_bootstrap=tls_broker.bootstrap)
    with pytest.raises(KafkaUnavailableError) as caught:
        await wait_for_kafka(plain, timeout=2)
    assert not isinstance(caught.value, KafkaSecurityError)  # no TLS or SASL configured to blame


async def test_faust_producer_through_tls(tls_broker: TlsBroker, certs: Certificates, tmp_path: Path) -> None:
    settings = tls_settings(tls_broker, certs.server, tmp_path)
    await create_topics(settings, {"secure.faust": {}})
    await send_with_faust(settings, "secure.faust")
    assert await read_topic(settings, "secure.faust") == [(b"k", b"from faust")]


async def send_with_faust(settings: Settings, topic: str) -> None:
    """Send one message with a service's Faust producer (aiokafka, built from faust_credentials)."""
    producer = ServiceApp("fetcher", settings).app.producer
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"k", b"from faust", partition=None, timestamp=None, headers=None)
    finally:
        await producer.stop()


async def test_a_wrong_ca_fails_at_once_with_a_clear_error(
    tls_broker: TlsBroker, certs: Certificates, tmp_path: Path
) -> None:
    settings = tls_settings(tls_broker, certs.other_ca, tmp_path)
    message = await refused_at_once(settings)
    assert f"TLS to {tls_broker.bootstrap} failed: certificate not trusted" in message
    assert "self-signed certificate" in message and "WIREWATCH_KAFKA_SSL_CAFILE" in message
    with pytest.raises(KafkaSecurityError, match="certificate not trusted"):
        await produce(settings, "secure.articles", [(b"k", b"v")])
    with pytest.raises(KafkaSecurityError, match="certificate not trusted"):
        await read_topic(settings, "secure.articles")


async def test_the_broker_name_is_checked_unless_turned_off(
    tls_broker: TlsBroker, certs: Certificates, tmp_path: Path
) -> None:
    """The broker's certificate names 127.0.0.1 only; bootstrapping through "localhost" is a mismatch."""
    by_name = f"localhost:{tls_broker.port}"
    with pytest.raises(KafkaSecurityError) as caught:
        await wait_for_kafka(tls_settings(by_name, certs.server, tmp_path), timeout=30)
    assert "localhost" in str(caught.value) and "WIREWATCH_KAFKA_SSL_CHECK_HOSTNAME" in str(caught.value)
    unchecked = tls_settings(by_name, certs.server, tmp_path, kafka_ssl_check_hostname=False)
    await wait_for_kafka(unchecked, timeout=30)


async def test_mutual_tls_with_an_encrypted_client_key(
    mtls_broker: TlsBroker, certs: Certificates, tmp_path: Path
) -> None:
    settings = tls_settings(
        mtls_broker,
        certs.server,
        tmp_path,
        kafka_ssl_certfile=certs.client,
        kafka_ssl_keyfile=certs.client_key,
        kafka_ssl_key_password_file=certs.key_password_file,
    )
    await create_topics(settings, {"secure.mtls": {}})
    await produce(settings, "secure.mtls", [(b"k", b"with a client certificate")])
    assert await read_topic(settings, "secure.mtls") == [(b"k", b"with a client certificate")]
    without = tls_settings(mtls_broker, certs.server, tmp_path)
    with pytest.raises(KafkaUnavailableError):
        await wait_for_kafka(without, timeout=3)


# --- real SASL ---------------------------------------------------------------------------------


async def test_scram_is_spoken_to_an_authenticating_broker(
    sasl_broker: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KafkaUnavailableError) as refused:  # it wants a login
        await wait_for_kafka(make_settings(kafka_bootstrap=sasl_broker), timeout=2)
    assert not isinstance(refused.value, KafkaSecurityError)
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        settings = make_settings(kafka_bootstrap=sasl_broker, **sasl_values(tmp_path, mechanism))
        message = await refused_at_once(settings)
        assert f"SASL authentication as 'alice' with {mechanism} at {sasl_broker} failed" in message
        assert "SCRAM" in message and PASSWORD not in message
        with pytest.raises(KafkaSecurityError, match="SASL authentication as 'alice'"):
            await produce(settings, "anything", [(b"k", b"v")])
    assert any(record.name.startswith("aiokafka") for record in caplog.records)  # attempts were logged
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert PASSWORD not in logged


# --- real SCRAM logins: a SASL front (scramp) in front of a plain tansu --------------------------

WRONG_PASSWORD = "not-Alices-pw"


def scram_settings(broker: ScramBroker, tmp_path: Path, mechanism: str, **values: Any) -> Settings:
    return make_settings(
        kafka_bootstrap=broker.bootstrap,
        **sasl_values(tmp_path, mechanism, **values),
        topic_partitions=1,
        data_dir=tmp_path / "data",
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_scram_login_then_produce_and_read(
    scram_broker: ScramBroker, tmp_path: Path, mechanism: str
) -> None:
    settings = scram_settings(scram_broker, tmp_path, mechanism)
    proxy = scram_broker.proxy
    connections, logins = proxy.connections, proxy.logins.copy()
    await wait_for_kafka(settings, timeout=30)
    topic = f"sasl.{mechanism.lower()}"
    assert await create_topics(settings, {topic: {}}) == [topic]
    await produce(settings, topic, [(b"k", f"via {mechanism}".encode())])
    assert await read_topic(settings, topic) == [(b"k", f"via {mechanism}".encode())]
    opened = proxy.connections - connections
    assert opened >= 8  # four clients, each to the bootstrap address and then to the broker it names
    assert proxy.logins - logins == Counter({mechanism: opened})  # every one logged in, with this mechanism


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_a_wrong_scram_password_fails_at_once_with_a_clear_error(
    scram_broker: ScramBroker, tmp_path: Path, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = tmp_path / "wrong-password"
    wrong.write_text(WRONG_PASSWORD + "\n")
    settings = scram_settings(scram_broker, tmp_path, mechanism, kafka_sasl_password_file=wrong)
    logins = scram_broker.proxy.logins.copy()
    message = await refused_at_once(settings)
    assert f"SASL authentication as 'alice' with {mechanism} at {scram_broker.bootstrap} failed" in message
    # the front's refusal, in Apache Kafka's words, as aiokafka reports it
    refusal = f"due to invalid credentials with SASL mechanism {mechanism}"
    assert (
        f"[Error 58] SaslAuthenticationFailed: Authentication failed during authentication {refusal}"
        in message
    )
    with pytest.raises(KafkaSecurityError, match="invalid credentials"):
        await produce(settings, "sasl.refused", [(b"k", b"v")])
    assert scram_broker.proxy.logins == logins
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for text in (message, logged):
        assert WRONG_PASSWORD not in text and PASSWORD not in text


async def test_a_mechanism_the_broker_does_not_offer_is_named(
    scram_broker: ScramBroker, tmp_path: Path
) -> None:
    with pytest.raises(KafkaSecurityError) as caught:
        await wait_for_kafka(scram_settings(scram_broker, tmp_path, "PLAIN"), timeout=30)
    message = str(caught.value)
    assert f"SASL authentication as 'alice' with PLAIN at {scram_broker.bootstrap} failed" in message
    # aiokafka reports the broker's error code only, not the mechanisms the broker offers
    assert "[Error 33] UnsupportedSaslMechanismError" in message and PASSWORD not in message


async def test_a_client_without_sasl_gets_nothing_through_the_scram_front(scram_broker: ScramBroker) -> None:
    connections, logins = scram_broker.proxy.connections, scram_broker.proxy.logins.copy()
    plain = make_settings(kafka_bootstrap=scram_broker.bootstrap)
    with pytest.raises(KafkaUnavailableError) as caught:
        await wait_for_kafka(plain, timeout=2)
    assert not isinstance(caught.value, KafkaSecurityError)  # no TLS or SASL configured to blame
    assert scram_broker.proxy.connections > connections and scram_broker.proxy.logins == logins


async def test_faust_logs_in_with_scram(scram_broker: ScramBroker, tmp_path: Path) -> None:
    settings = scram_settings(scram_broker, tmp_path, "SCRAM-SHA-256")
    await create_topics(settings, {"sasl.faust": {}})
    proxy = scram_broker.proxy
    connections, logins = proxy.connections, proxy.logins.copy()
    await send_with_faust(settings, "sasl.faust")
    opened = proxy.connections - connections
    assert opened >= 2 and proxy.logins - logins == Counter({"SCRAM-SHA-256": opened})
    assert await read_topic(settings, "sasl.faust") == [(b"k", b"from faust")]


# --- SCRAM inside TLS (SASL_SSL), as managed Kafka services and Strimzi's SCRAM listeners run ---


async def test_scram_login_inside_tls_then_produce_and_read(
    scram_tls_broker: ScramBroker, certs: Certificates, tmp_path: Path
) -> None:
    settings = scram_settings(
        scram_tls_broker,
        tmp_path,
        "SCRAM-SHA-512",
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=certs.server,
    )
    proxy = scram_tls_broker.proxy
    connections, logins = proxy.connections, proxy.logins.copy()
    await wait_for_kafka(settings, timeout=30)
    assert await create_topics(settings, {"sasl.ssl": {}}) == ["sasl.ssl"]
    await produce(settings, "sasl.ssl", [(b"k", b"via SASL_SSL")])
    assert await read_topic(settings, "sasl.ssl") == [(b"k", b"via SASL_SSL")]
    opened = proxy.connections - connections  # counted once the TLS handshake succeeded
    assert opened >= 8 and proxy.logins - logins == Counter({"SCRAM-SHA-512": opened})
    await send_with_faust(settings, "sasl.ssl")  # Faust's producer: TLS and SASL from one settings object
    assert await read_topic(settings, "sasl.ssl") == [(b"k", b"via SASL_SSL"), (b"k", b"from faust")]
    assert proxy.logins - logins == Counter({"SCRAM-SHA-512": proxy.connections - connections})


async def test_scram_without_tls_gets_nothing_from_a_sasl_ssl_listener(
    scram_tls_broker: ScramBroker, tmp_path: Path
) -> None:
    logins = scram_tls_broker.proxy.logins.copy()
    settings = scram_settings(scram_tls_broker, tmp_path, "SCRAM-SHA-512")  # SASL_PLAINTEXT
    with pytest.raises(KafkaUnavailableError):
        await wait_for_kafka(settings, timeout=2)
    assert scram_tls_broker.proxy.logins == logins
