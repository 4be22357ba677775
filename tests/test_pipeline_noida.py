"""The end-to-end tests of test_pipeline_e2e.py again, on noida-db (the local mode's backend:
Kafka and the Elasticsearch 8 API in one server, data on disk), so that nothing rests on one
emulator's quirks.

The same tests, in the same order, with two differences that are noida's own:
- a ``kill -9``ed service is recovered as ``wirewatch up`` recovers it there (noida never evicts a
  group member that died without leaving, so its group would hang): the servers are restarted on
  their data, then every service (tests/pipeline.py). Every article must still be there once and
  every alert delivered once;
- the minute-long broker freeze freezes the search server as well (one process).
"""

from __future__ import annotations

import pytest

from pipeline import Pipeline
from test_pipeline_e2e import *  # noqa: F403 (the tests themselves, collected here again)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def backend() -> str:
    return "noida"


def test_each_crash_above_was_recovered_by_restarting_the_servers(pipeline: Pipeline) -> None:
    """The kill -9s above went through noida's recovery, not a lone service's restart (which
    would have hung in its group): one restart of the servers at least per test that kills."""
    assert pipeline.server_restarts >= 5
