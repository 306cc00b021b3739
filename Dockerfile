# ColdCopy for Slack: one image for `coldcopy serve` (default), `coldcopy worker` and
# `coldcopy migrate`. Build: docker build -t coldcopy .   Operating it: docs/RUNBOOK.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The package exactly as the README installs it, without the dev extras. The migrations
# ship inside the `storage` package (package-data), so nothing else is needed at run time.
COPY pyproject.toml README.md manifest.yml /src/
COPY bot/ /src/bot/
COPY storage/ /src/storage/
RUN pip install /src

# Run as an unprivileged user. /app is the working directory: a `.env` there would be read,
# and the embedded default DATABASE_URL (sqlite:///coldcopy.db) writes its file there, so
# mount a volume on /app when running the one-process mode.
RUN useradd --create-home --uid 10001 --user-group coldcopy \
    && mkdir /app \
    && chown coldcopy:coldcopy /app
WORKDIR /app
USER coldcopy

EXPOSE 3000

# /healthz answers 200 while the process serves HTTP. The slim image has no curl, so ask with
# Python. Only `serve` listens: compose.yaml disables this check for worker and migrate.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

CMD ["coldcopy", "serve", "--host", "0.0.0.0", "--port", "3000"]
