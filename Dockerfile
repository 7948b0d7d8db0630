# One image for every billing-mesh service; docker-compose.yml picks the
# service with its command:  nameko run --config config.yaml services.<name>
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned dependencies first, so code changes do not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The project itself (packages mesh and services), then the run-time files.
# Editable, so the code stays in /app: mesh.config.ROOT (config.yaml, relative
# SQLite paths under var/) is the folder that holds the mesh package.
COPY pyproject.toml config.yaml Procfile ./
COPY mesh/ ./mesh/
COPY services/ ./services/
COPY streams/ ./streams/
RUN pip install --no-cache-dir --no-deps -e .

# Run as an unprivileged user; var/ holds the SQLite files when no *_DB_URI is set.
RUN useradd --system --no-create-home mesh \
    && mkdir -p var /data/streams \
    && chown mesh var /data/streams
USER mesh

EXPOSE 8000

# Default: the whole mesh in one container, from the Procfile (compose runs one
# service per container instead).
CMD ["honcho", "start"]
