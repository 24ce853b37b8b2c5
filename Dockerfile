# syntax=docker/dockerfile:1
# The image docker-compose.yml runs as worker and service: hitl installed from its wheel (not
# editable), with only its runtime dependencies (hitl, its service and otel extras) at the exact
# versions and hashes of requirements/image.txt, run by an unprivileged user. No test or dev tool.
#   docker build -t hitl .
# tests/worker/test_image.py checks this file, the locks and what compose does with the image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv of the locked dependencies (no pip or setuptools of its own), then hitl's wheel
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/ requirements/
RUN python -m venv --without-pip /opt/hitl \
 && pip --python /opt/hitl/bin/python install --require-hashes --only-binary :all: --no-deps -r requirements/image.txt \
 && pip install --require-hashes --only-binary :all: --no-deps -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY hitl/ hitl/
COPY workflows/ workflows/
COPY activities/ activities/
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/hitl/bin/python install --no-deps --no-index /wheels/hitl-*.whl \
 && pip --python /opt/hitl/bin/python check

# --- runtime: the virtualenv, the worker's entry point and the example agents, owned by root
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 hitl \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hitl
COPY --from=build /opt/hitl /opt/hitl
ENV PATH=/opt/hitl/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY worker.py starter.py ./
COPY examples/ examples/
RUN python -m compileall -q /app
# Key files (strict mode) are mounted read-only for uid 10001: chown them to it (docker-compose.yml).
USER 10001:10001
CMD ["python", "worker.py", "--agents", "examples.quickstart", "--agents", "examples.team_trading"]
