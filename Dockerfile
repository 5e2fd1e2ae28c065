# Digit Canvas: the REST API and web page, serving the committed Dense MNIST model.
#
#   docker build -t digit-canvas .
#   docker run --rm -p 8000:8000 digit-canvas        # http://127.0.0.1:8000
#
# Two stages: the builder installs serving's dependencies (no TensorFlow) into a virtual
# environment in /opt/venv; the final image gets that environment, the code and the model,
# and nothing else. Written for the classic builder as well as BuildKit (no BuildKit-only
# syntax).
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: dependencies only, so this layer is rebuilt only when requirements.txt changes.
FROM ${BASE_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Not needed to run the server, so kept out of the final image: test suites and testing
# helpers, NumPy's Fortran and C build tools, SQLAlchemy's dialects for MySQL, Oracle and SQL
# Server and its compiled speed-ups (9 MB; it runs the same without them, and a correction
# is one insert), Pillow's AVIF codec and font rendering (the server opens PNG, JPEG, WebP,
# GIF and BMP, and draws no text; Pillow skips a missing codec), type stubs, the installers
# (setuptools, pip), and the bytecode pip compiled for all of it: the final stage compiles
# what the server imports.
RUN /opt/venv/bin/python -m pip install --no-cache-dir -r /tmp/requirements.txt \
 && /opt/venv/bin/python -m pip uninstall --yes --quiet setuptools pip \
 && cd /opt/venv/lib/python3*/site-packages \
 && rm -rf numpy/tests numpy/*/tests h5py/tests sqlalchemy/testing alembic/testing \
        numpy/f2py numpy/distutils numpy/_core/include \
        sqlalchemy/dialects/mysql sqlalchemy/dialects/oracle sqlalchemy/dialects/mssql \
        PIL/_avif.* PIL/_imagingft.* PIL/_imagingtk.* pillow.libs/libavif-* \
        pillow.libs/libfreetype-* pillow.libs/libharfbuzz-* pillow.libs/libbrotli* \
        pillow.libs/libpng16-* \
 && find sqlalchemy -name "*.so" -delete \
 && find . -name "*.pyi" -delete \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# ---- final image
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH="/opt/venv/bin:${PATH}" \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    LOG_LEVEL=info

# An unprivileged user, without a home.
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-log-init --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# Code and data are owned by root and read-only for the server's user.
WORKDIR /app
COPY models/ /app/models/
COPY static/ /app/static/
COPY templates/ /app/templates/
COPY app/ /app/app/
# The corrections database (SQLite by default) lives here: the only place the server writes.
# Keep it in a named volume: docker run -v digit-canvas-data:/app/data ...
RUN mkdir /app/data && chown app:app /app/data
VOLUME /app/data
# Compiled once here: the server's user cannot write bytecode, and each start would compile.
# The libraries' bytecode is written by importing what the server imports (its code, the
# corrections store, gunicorn's workers, PostgreSQL's driver), not for all they hold.
RUN python -m compileall -q /app/app \
 && PYTHONDONTWRITEBYTECODE= python -c "import app.main, app.serving.corrections.store, \
app.serving.corrections.export, app.serving.workers, psycopg, sqlalchemy.dialects.postgresql"

USER 10001:10001
EXPOSE 8000

# /healthz answers once the model is loaded (uvicorn accepts connections after the lifespan
# start-up). The slim image has no curl, hence Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('DIGIT_CANVAS_PORT') or os.environ.get('PORT', '8000')), timeout=4)"]

# Exec form: Python is PID 1 and receives SIGTERM from `docker stop`; uvicorn then finishes
# the requests in flight and exits.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app.serve"]
