# syntax=docker/dockerfile:1
# A Lambda container image running examples/app.py on fastric, from any Python base image.
#
#   docker build -t fastric-app .
#   docker run --rm -p 9000:8080 fastric-app          # no AWS_LAMBDA_RUNTIME_API: fastric's emulator
#   curl -XPOST "http://localhost:9000/2015-03-31/functions/function/invocations" -d '{}'
#
# On Lambda the same image runs `python3 -m fastric app.handler` (see fastric/lambda-entrypoint.sh).
# Other bases: --build-arg BASE_IMAGE=python:3.13-slim-trixie, or python:3.12-alpine (musllinux wheels exist
# for uvloop, httptools and orjson, so no compiler is needed on any of them).
ARG BASE_IMAGE=python:3.12-slim-bookworm

# Build stage: the fastric wheel, plus the wheels of its dependencies, into /wheels.
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fastric ./fastric
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: the base image plus those wheels (bind-mounted, so no layer keeps them), and the function.
FROM ${BASE_IMAGE}
RUN --mount=type=bind,from=build,source=/wheels,target=/tmp/wheels \
    python -m pip install --no-cache-dir --no-index /tmp/wheels/*.whl \
    && entrypoint="$(python -c 'import fastric, pathlib; print(pathlib.Path(fastric.__file__).with_name("lambda-entrypoint.sh"))')" \
    && ln -s "$entrypoint" /lambda-entrypoint.sh \
    && mkdir -p /var/runtime \
    && ln -s "$entrypoint" /var/runtime/bootstrap
ENV LAMBDA_TASK_ROOT=/var/task
WORKDIR ${LAMBDA_TASK_ROOT}
COPY examples/app.py ./
# Lambda mounts /var/task read-only: compile now so that no cold start recompiles the function.
RUN python -m compileall -q .
ENTRYPOINT ["/lambda-entrypoint.sh"]
CMD ["app.handler"]
