"""Errors that repeat by the thousand are logged once a minute, saying how many were left
out; other messages pass untouched."""

import logging

import pytest

from app.serving.logs import OVER_CONNECTION_LIMIT, OncePerInterval


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, None, None)


def test_a_repeated_message_passes_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 100.5, 130.0, 161.0, 161.5])
    monkeypatch.setattr("app.serving.logs.time.monotonic", lambda: next(clock))
    once = OncePerInterval({OVER_CONNECTION_LIMIT}, seconds=60)
    passed = []
    for _ in range(5):
        entry = record(OVER_CONNECTION_LIMIT)
        if once.filter(entry):
            passed.append(entry.getMessage())
    assert passed == [
        OVER_CONNECTION_LIMIT,
        f"{OVER_CONNECTION_LIMIT} (2 more like it in the last 60 s)",
    ]


def test_other_messages_always_pass() -> None:
    once = OncePerInterval({OVER_CONNECTION_LIMIT})
    assert all(once.filter(record("Application startup complete.")) for _ in range(3))
