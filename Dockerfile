# syntax=docker/dockerfile:1
# ATP's container image: the web server, the Celery worker and beat all run from it
# (docs/deployment.md). Build: docker build -t atp:latest .
#
# Dependencies come from requirements.lock, installed with --require-hashes: the part of it
# the server needs (tools/runtime_lock.py drops the dev extra: tests, linters, lock tools),
# every file checked against the lock's sha256. torch is locked as the CPU build
# (torch==2.13.0+cpu), which PyPI does not publish; development machines find it through
# the lock's --find-links /opt/wheels, the image from PyTorch's CPU index
# (https://download.pytorch.org/whl/cpu), given as an extra index. The lock's hash makes
# sure the wheel from that index is the very file locked; a file whose hash is not in the
# lock, from any index, is refused.
#
# The running container is non-root (uid 10001) and works with a read-only root file
# system: it writes only to ATP_DATA_DIR (/var/lib/atp, a volume per instance) and /tmp
# (a tmpfs). Python files are compiled at build time, so nothing is written beside them.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY tools/runtime_lock.py tools/
RUN python tools/runtime_lock.py pyproject.toml requirements.lock > /tmp/runtime.lock \
    && python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes --no-deps --only-binary :all: \
        --extra-index-url "${TORCH_INDEX_URL}" -r /tmp/runtime.lock \
    && /opt/venv/bin/python -m pip check
# atpctl, the remote CLI: the project's one package (the server runs from the source tree).
COPY atpctl atpctl
RUN /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --no-deps --no-build-isolation --no-index . \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
# pg_dump and pg_restore for backups (manage.py atp_backup, the daily job): the client of
# the server's major version, from the PostgreSQL project's own repository (Debian's is
# older, and pg_dump refuses a newer server).
ARG PG_MAJOR=17
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common ca-certificates \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 atp \
    && useradd --system --uid 10001 --gid atp --home-dir /var/lib/atp --no-create-home \
        --shell /usr/sbin/nologin atp \
    && install -d -o atp -g atp -m 0750 /var/lib/atp /var/lib/atp/jobs /var/backups/atp
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . .
RUN /opt/venv/bin/python -m compileall -q /app
ENV PATH=/opt/venv/bin:$PATH \
    ATP_DATA_DIR=/var/lib/atp
USER 10001:10001
VOLUME ["/var/lib/atp"]
EXPOSE 8000
# One uvicorn process per container: scale out with more containers (or add --workers N).
# SIGTERM stops it gracefully: in-flight requests finish, queued rows are written (to the
# spill file in ATP_DATA_DIR if the database is down) and the audit chain's end is sealed.
STOPSIGNAL SIGTERM
CMD ["uvicorn", "atp_site.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--loop", "uvloop", "--http", "httptools", "--lifespan", "on", \
     "--timeout-graceful-shutdown", "30", "--no-access-log"]
