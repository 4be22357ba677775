"""Kafka plumbing shared by services and commands: topics, producer, counts and lag.

Only requests valid on Apache Kafka 3.x/4.x are used. Topics are created explicitly
(never by auto-creation) so every topic has the configured partition count.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from wirewatch.core.logs import get_logger
from wirewatch.core.settings import Settings, not_configured

if TYPE_CHECKING:  # Faust is imported by the services only, not by every command
    import faust

log = get_logger(__name__)

#: Topics whose latest value per key is the state (kept forever by compaction).
COMPACTED = frozenset({"claims"})


def pause_after_empty_fetches(seconds: float) -> None:
    """Make every aiokafka consumer of this process wait ``seconds`` after a fetch that brought
    nothing (no records, no error to report) before it fetches from that broker again.

    A Kafka broker holds an empty fetch until data arrives or ``fetch_max_wait_ms`` ends, so an
    idle consumer sends a couple of fetches a second. A server that answers at once (noida-db)
    would get thousands a second from each consumer, a busy core per service with nothing to
    read. The pause counts from when the fetch was sent, so a broker that did wait is not made to
    wait again. 0 restores aiokafka's behaviour.
    """
    if seconds <= 0:
        _wrap_fetcher("_proc_fetch_request", None)
        return

    def wrap(upstream: Any) -> Any:
        async def _proc_fetch_request(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
            sent = time.monotonic()
            records_or_errors: bool = await upstream(self, assignment, node_id, request)
            if not records_or_errors:
                try:
                    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - sent)))
                except asyncio.CancelledError:  # closing or unassigned: aiokafka's own fetch returns too
                    return False
            return records_or_errors

        return _proc_fetch_request

    _wrap_fetcher("_proc_fetch_request", wrap)


def fetch_max_wait(seconds: float) -> None:
    """Make every aiokafka consumer of this process ask the broker to hold an empty fetch for at
    most ``seconds`` (``fetch_max_wait_ms``), Faust's consumers included: Faust fixes 1.5 s.

    Apache Kafka answers a held fetch as soon as data arrives, so this only sets how often an idle
    consumer asks again. tansu (the test and local broker) answers late: a record produced while
    a fetch is held waited about a fifth of the max wait on average (0.34 s at 1.5 s, 0.03 s at
    0.1 s), at each hop of the pipeline.
    """
    wait_ms = max(1, round(seconds * 1000))

    def wrap(upstream: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = wait_ms
            upstream(self, *args, **kwargs)

        return __init__

    _wrap_fetcher("__init__", wrap)


def _wrap_fetcher(name: str, wrap: Callable[[Any], Any] | None) -> None:
    """Replace aiokafka's ``Fetcher.<name>`` by ``wrap(aiokafka's own)``, or put aiokafka's own
    back (``wrap`` None). Calling it again replaces the earlier wrapper rather than stacking."""
    from aiokafka.consumer.fetcher import Fetcher

    current = getattr(Fetcher, name)
    upstream = getattr(current, "_wirewatch_upstream", current)
    if wrap is None:
        setattr(Fetcher, name, upstream)
        return
    wrapper = wrap(upstream)
    wrapper._wirewatch_upstream = upstream
    setattr(Fetcher, name, wrapper)


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer within the allowed time."""


class KafkaSecurityError(KafkaUnavailableError):
    """TLS or SASL refused the connection (CA, certificate, host name, mechanism or password):
    retrying does not help."""


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise KafkaUnavailableError(not_configured("WIREWATCH_KAFKA_BOOTSTRAP", settings.data_dir))
    return settings.kafka_bootstrap


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of ``SSL`` and ``SASL_SSL`` (None otherwise): the brokers' certificates are
    verified against ``kafka_ssl_cafile`` (else the system CAs), with an optional client certificate."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    key_password = settings.kafka_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        password=key_password.get_secret_value if key_password is not None else None,
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client is built with: the bootstrap servers and the
    security settings (protocol, TLS context, SASL mechanism and credentials).

    The one place settings become client configuration; :func:`faust_credentials` is the same
    for Faust. The result holds the SASL password: never log it."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # checked by Settings
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faust_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's ``broker_credentials`` for the same settings as :func:`client_options` (None for
    PLAINTEXT). Faust hands them to its aiokafka clients; the broker URLs stay ``kafka://``."""
    import faust

    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # checked by Settings
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,  # with a context: SASL_SSL
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


async def security_failure(settings: Settings) -> KafkaSecurityError | None:
    """Connect to each bootstrap server as the clients do and name the TLS or SASL failure, if
    that is what stops them (None: security is not the problem, or not in use).

    aiokafka only logs why it could not bootstrap and raises "Unable to bootstrap from ..."."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    options = client_options(settings)
    servers = str(options.pop("bootstrap_servers"))
    mechanism = settings.kafka_sasl_mechanism
    who = f"as {settings.kafka_sasl_username!r} with {mechanism}"
    for server in (part.strip() for part in servers.split(",") if part.strip()):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            continue  # aiokafka refuses such an address by itself
        try:
            conn = await create_conn(host.strip("[]"), int(port), request_timeout_ms=5000, **options)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            hint = (
                "WIREWATCH_KAFKA_SSL_CHECK_HOSTNAME=false skips the name check (not advised)"
                if "mismatch" in reason.lower()  # "Hostname mismatch", "IP address mismatch"
                else "is WIREWATCH_KAFKA_SSL_CAFILE the CA that signed the broker's certificate?"
            )
            return KafkaSecurityError(f"TLS to {server} failed: certificate not trusted: {reason}; {hint}")
        except ssl.SSLError as exc:
            return KafkaSecurityError(
                f"TLS to {server} failed: {exc.reason or exc}; is it a TLS listener "
                f"(WIREWATCH_KAFKA_SECURITY_PROTOCOL={protocol}), and does it accept the client certificate?"
            )
        except (
            AuthenticationFailedError,
            SaslAuthenticationFailed,
            UnsupportedSaslMechanismError,
            IllegalSaslStateError,
        ) as exc:
            return KafkaSecurityError(f"SASL authentication {who} at {server} failed: {exc}")
        except (KeyError, ValueError) as exc:
            if not (mechanism or "").startswith("SCRAM-"):
                raise
            # aiokafka's SCRAM client fails so when the server's last message is a refusal ("e=...")
            return KafkaSecurityError(
                f"SASL authentication {who} at {server} failed: the server refused the SCRAM "
                f"exchange ({exc!r})"
            )
        except (KafkaError, OSError):
            continue  # down or unreachable (timeouts included): not a security failure
        conn.close()
    return None


async def _start_failed(settings: Settings, exc: Exception) -> NoReturn:
    """Raise the error for a client that could not start: the TLS or SASL cause when it is one,
    else ``KafkaUnavailableError`` for a connection error (anything else as it is)."""
    failure = await security_failure(settings)
    if failure is not None:
        raise failure from exc
    if isinstance(exc, (KafkaError, OSError)):
        raise KafkaUnavailableError(str(exc)) from exc
    raise exc


async def _start(client: AIOKafkaConsumer | AIOKafkaProducer, settings: Settings) -> None:
    """Start a short-lived client; if it cannot, close what it opened and raise as
    :func:`_start_failed` does (a client left unstopped warns "Unclosed AIOKafkaConsumer")."""
    try:
        await client.start()
    except Exception as exc:
        await client.stop()
        await _start_failed(settings, exc)


async def wait_for_kafka(settings: Settings, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:
            failure = await security_failure(settings)
            if failure is not None:
                raise failure from exc  # a wrong CA or password does not get better by waiting
            if not isinstance(exc, (KafkaError, OSError)):
                raise
            last = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise KafkaUnavailableError(f"Kafka at {settings.kafka_bootstrap} unreachable for {timeout:.0f}s: {last}")


async def ensure_topics(settings: Settings) -> list[str]:
    """Create wirewatch's topics that do not exist yet; return the ones created."""
    return await create_topics(
        settings,
        {
            name: {"cleanup.policy": "compact"} if logical in COMPACTED else {}
            for logical, name in settings.topics.items()
        },
    )


@dataclass(frozen=True)
class TopicStats:
    topic: str
    partitions: int
    messages: int  # end offset minus start offset, summed (compacted topics: an upper bound)


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int
    committed: int


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return set(partitions or ())


async def topic_stats(settings: Settings) -> list[TopicStats]:
    consumer = AIOKafkaConsumer(**client_options(settings), request_timeout_ms=10000)
    await _start(consumer, settings)
    try:
        out = []
        for name in settings.topics.values():
            partitions = await _partitions(consumer, name)
            if not partitions:
                out.append(TopicStats(name, 0, 0))
                continue
            tps = [TopicPartition(name, p) for p in sorted(partitions)]
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            out.append(TopicStats(name, len(tps), sum(ends[tp] - starts[tp] for tp in tps)))
        return out
    finally:
        await consumer.stop()


async def consumer_lag(settings: Settings, groups: list[str]) -> list[GroupLag]:
    """Lag of each consumer group on each wirewatch topic it has committed offsets for."""
    out = []
    for group in groups:
        consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=10000,
        )
        await _start(consumer, settings)  # not subscribed: reads committed offsets without joining the group
        try:
            for topic in settings.topics.values():
                tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
                committed = {tp: await consumer.committed(tp) for tp in tps}
                known = {tp: off for tp, off in committed.items() if off is not None}
                if not known:
                    continue
                ends = await consumer.end_offsets(list(known))
                lag = sum(max(ends[tp] - off, 0) for tp, off in known.items())
                out.append(GroupLag(group, topic, lag, sum(known.values())))
        finally:
            await consumer.stop()
    return out


async def read_topic(
    settings: Settings, topic: str, *, timeout: float = 5.0, max_messages: int = 100_000
) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) currently in a topic, from the beginning (for CLI and tests)."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await _start(consumer, settings)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        ends = await consumer.end_offsets(tps) if tps else {}
        out: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < max_messages:
            reached = [await _position_reached(consumer, tp, ends[tp]) for tp in tps]
            if all(reached):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
        return out
    except KafkaConnectionError as exc:
        raise KafkaUnavailableError(str(exc)) from exc
    finally:
        await consumer.stop()


async def _position_reached(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    if end == 0:
        return True
    try:
        return bool(await consumer.position(tp) >= end)
    except KafkaError:
        return False


async def produce(settings: Settings, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
    """Send ``(key, value)`` messages and wait until the broker has them all (acks=all)."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await _start(producer, settings)
    try:
        sent = [await producer.send(topic, key=key, value=value) for key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def create_topics(settings: Settings, wanted: dict[str, dict[str, str]]) -> list[str]:
    """Create the topics named in ``wanted`` (name -> topic configs) that do not exist yet, each
    with ``topic_partitions`` partitions; return the ones created."""
    await wait_for_kafka(settings)
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        created = []
        for name, configs in wanted.items():
            if name in existing:
                continue
            topic = NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=configs,
            )
            try:  # one by one: a concurrent creator must not fail the others
                await admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("topics created", extra={"topics": created, "partitions": settings.topic_partitions})
        return created
    finally:
        await admin.close()


async def ensure_fetcher_topics(settings: Settings) -> list[str]:
    """The fetcher's own topics: the feeds (compacted, key: feed id) and backfill requests.

    Their partitions are how fetcher instances share the sites (see ``wirewatch.fetcher.state``)."""
    return await create_topics(
        settings, {settings.topic_feeds: {"cleanup.policy": "compact"}, settings.topic_backfill: {}}
    )
