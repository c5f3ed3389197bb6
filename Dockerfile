# syntax=docker/dockerfile:1
# Build: docker build -t governance-gateway .   Run: docker run -e DATABASE_URL=postgresql://... -p 8000:8000 governance-gateway
FROM python:3.11-slim AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# Dependencies first (cached layer), exactly as pinned in uv.lock, without the dev extras.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-install-project
COPY gateway ./gateway
COPY schema ./schema
COPY resolvers ./resolvers
COPY drivers ./drivers
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-editable

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /app --shell /usr/sbin/nologin gateway
WORKDIR /app
COPY --from=builder --chown=gateway:gateway /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 GATEWAY_DATA_DIR=/app/data
RUN mkdir -p /app/data && chown gateway:gateway /app/data
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
