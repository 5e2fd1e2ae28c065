"""Model files on disk: atomic writes, and the hashes recorded in model cards."""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def sha256_of_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
