# One image for every billing-mesh service; docker-compose.yml picks the
# service with its command:  nameko run --config config.yaml services.<name>
# The newest Python the mesh supports (3.11 to 3.13: pyproject.toml; CI tests
# 3.11 and 3.13).
FROM python:3.13-slim

# EVENTLET_HUB: every service on eventlet's asyncio hub (mesh/hub.py), set before
# `nameko run` imports eventlet.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EVENTLET_HUB=mesh.asyncio_hub

WORKDIR /app

# The runtime dependencies only (requirements.txt; no test tools, no launcher,
# no local Kafka broker), pinned, first, so code changes do not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The project itself, then the run-time files. Editable, so the code stays in
# /app: common.config.ROOT (config.yaml, relative SQLite paths under var/) is
# the folder that holds the packages. tools/ comes along as a package of the
# project (its launcher needs honcho, which the image does not have).
COPY pyproject.toml config.yaml Procfile ./
COPY contracts/ ./contracts/
COPY common/ ./common/
COPY mesh/ ./mesh/
COPY services/ ./services/
COPY migrations/ ./migrations/
COPY streams/ ./streams/
COPY tools/ ./tools/
RUN pip install --no-cache-dir --no-deps -e .

# tools/billing_mesh.pth in site-packages, as `make setup` does for .venv: the hub
# default and exactly the upstream start-up warnings filtered (eventlet's banner,
# pkg_resources' notice), for any Python process of the image (`docker compose exec
# ... nameko shell` included).
RUN cp tools/billing_mesh.pth \
    "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/billing_mesh.pth"

# Run as an unprivileged user; var/ holds the SQLite files when no *_DB_URI is set.
# var/issuer: the local token issuer's keys (its compose volume starts as this).
# A numeric user, so Kubernetes' runAsNonRoot can check it (deploy/k8s).
RUN useradd --system --uid 10001 --user-group --no-create-home mesh \
    && mkdir -p var/issuer /data/streams \
    && chown mesh var var/issuer /data/streams
USER 10001:10001

EXPOSE 8000

# Default: the gateway; docker-compose.yml gives every container its own
# service's command (one process per container, as the Procfile lists them).
CMD ["nameko", "run", "--config", "config.yaml", "services.gateway"]
