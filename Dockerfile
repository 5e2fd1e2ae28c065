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
# Not needed to run the server, so kept out of the final image: NumPy's and h5py's own test
# suites, SQLAlchemy's compiled speed-ups (9 MB; it runs the same without them, and a
# correction is one insert), and the installers (setuptools, pip).
RUN /opt/venv/bin/python -m pip install --no-cache-dir -r /tmp/requirements.txt \
 && cd /opt/venv/lib/python3*/site-packages \
 && rm -rf numpy/tests numpy/*/tests h5py/tests \
 && find sqlalchemy -name "*.so" -delete \
 && /opt/venv/bin/python -m pip uninstall --yes --quiet setuptools pip

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
RUN python -m compileall -q /app/app

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
