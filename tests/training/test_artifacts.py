"""Atomic writes: a failed or interrupted write never leaves a half-written file behind."""

from pathlib import Path

import pytest

from app.training.artifacts import write_atomically, write_json_atomically


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "mnist_dense.keras"
    target.write_bytes(b"the good model")

    def write_half_then_fail(temporary: Path) -> None:
        temporary.write_bytes(b"half a mod")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, write_half_then_fail)
    assert target.read_bytes() == b"the good model"
    assert [path.name for path in tmp_path.iterdir()] == ["mnist_dense.keras"]


def test_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "models" / "card.json"
    write_json_atomically(target, {"test_accuracy": 0.98})
    write_json_atomically(target, {"test_accuracy": 0.99})
    assert target.read_text() == '{\n  "test_accuracy": 0.99\n}\n'
    assert [path.name for path in target.parent.iterdir()] == ["card.json"]
