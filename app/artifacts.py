"""Model files on disk: atomic writes, and the model card that sits beside each model."""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "mnist_dense.keras"
SEED_MODEL_PATH = PROJECT_ROOT / "models" / "mnist_dense_seed.keras"


def model_card_path(model_path: Path) -> Path:
    """The model card of `model_path`: the same name with `.json`."""
    return model_path.with_suffix(".json")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary_path)`, then rename it over `path`.

    A killed or failed run leaves `path` as it was (never half-written), because the rename is
    atomic within one directory. The temporary name keeps the suffix, which Keras insists on.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(temporary)
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    write_atomically(
        path, lambda temporary: temporary.write_text(json.dumps(document, indent=2) + "\n")
    )


def read_model_card(model_path: Path) -> dict[str, Any]:
    """The model card beside `model_path`, or an empty dict when there is none."""
    card_path = model_card_path(model_path)
    if not card_path.is_file():
        return {}
    return json.loads(card_path.read_text())


def sha256_of_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
