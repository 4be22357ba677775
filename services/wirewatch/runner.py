"""Build and run one service by name: the single entry point for ``wirewatch run``."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

from wirewatch.core.app import ServiceApp
from wirewatch.core.kafka import ensure_fetcher_topics, ensure_topics
from wirewatch.core.logs import get_logger, setup_logging
from wirewatch.core.settings import SERVICES, ServiceName, Settings, unknown_variables

log = get_logger(__name__)


def build(name: ServiceName, settings: Settings) -> ServiceApp:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    module = importlib.import_module(f"wirewatch.{name}.service")
    service: ServiceApp = module.create(settings)
    return service


COMPUTE_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_compute_threads(threads: int) -> None:
    """Cap the threads numpy's BLAS and OpenMP use, unless the environment already does.

    The small products of the services' models gain nothing from more threads: OpenBLAS splits
    them over every core and its threads spin while they wait (three times the CPU of one
    thread for the NER); a service scales with workers and partitions instead. The variables
    are read when numpy is first imported, and by child processes (the fetcher's extraction
    pool), so a service sets them before; where numpy is already imported (the ``eval``
    commands, the benchmarks), its pools are capped in place."""
    preset = any(variable in os.environ for variable in COMPUTE_THREAD_VARIABLES)
    for variable in COMPUTE_THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    if "numpy" in sys.modules and not preset:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


def warn_of_unknown_variables() -> None:
    """Log each ``WIREWATCH_*`` variable no setting reads (a typo the settings ignore), once, at
    start: an operator who misspelled an alert target's variable would otherwise believe it set."""
    for unknown in unknown_variables():
        log.warning(
            unknown.message,
            extra={
                "variable": unknown.name,
                "did_you_mean": unknown.meant,
                "env_file": str(unknown.env_file) if unknown.env_file else None,
            },
        )


def run(name: ServiceName, settings: Settings) -> None:
    """Create topics, run the service's preparation, then the Faust worker until stopped."""
    limit_compute_threads(settings.compute_threads)
    setup_logging(settings.log_level, settings.log_format, name)
    warn_of_unknown_variables()
    service = build(name, settings)

    async def _prepare() -> None:
        await ensure_topics(settings)
        await service.prepare()

    asyncio.run(_prepare())
    service.run()


async def setup(settings: Settings) -> dict[str, list[str]]:
    """Create Kafka topics and Elasticsearch templates/indices (idempotent)."""
    from wirewatch.core.elastic import connect, ensure_indices

    topics = await ensure_topics(settings)
    topics += await ensure_fetcher_topics(settings)
    es = await connect(settings, wait=120)
    try:
        indices = await ensure_indices(es, settings)
    finally:
        await es.close()
    return {"topics": topics, "indices": indices}
