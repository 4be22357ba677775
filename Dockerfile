# syntax=docker/dockerfile:1
#
# One image for every wirewatch process:
#   docker run wirewatch:local setup            # topics, index templates, aliases (one-shot)
#   docker run wirewatch:local run fetcher      # or enricher | indexer | alerts
#   docker run wirewatch:local kibana import --url http://kibana:5601   # dashboards (one-shot)
# Configuration is environment only (WIREWATCH_*); see services/wirewatch/core/settings.py.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a venv -------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package build needs (README.md is the project's declared readme; the Kibana
# saved objects are installed as data files, see pyproject.toml).
COPY pyproject.toml README.md ./
COPY services/ services/
COPY deploy/kibana/ deploy/kibana/
RUN pip install --no-cache-dir .

# --- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WIREWATCH_WEB_HOST=0.0.0.0

RUN groupadd --system --gid 10001 wirewatch \
 && useradd --system --uid 10001 --gid wirewatch --home-dir /home/wirewatch --create-home \
        --shell /usr/sbin/nologin wirewatch

COPY --from=build /opt/venv /opt/venv

USER wirewatch:wirewatch
WORKDIR /home/wirewatch

# /healthz, /readyz and /metrics (WIREWATCH_WEB_PORT, default 6066).
EXPOSE 6066

ENTRYPOINT ["wirewatch"]
CMD ["--help"]
