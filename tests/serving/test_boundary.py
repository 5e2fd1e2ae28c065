"""Serving stands apart from training: it never imports the training modules or TensorFlow,
and its requirements do not name them."""

import subprocess
import sys

import pytest

from app.paths import PROJECT_ROOT

TRAINING_ONLY = ("tensorflow", "keras", "app.training")


@pytest.mark.slow
def test_the_server_imports_no_training_module_and_no_tensorflow() -> None:
    # A fresh interpreter: what `python -m app.serve` and `uvicorn app.main:app` load.
    probe = (
        "import pkgutil, sys, app.main, app.serve, app.serving\n"
        "for module in pkgutil.walk_packages(app.serving.__path__, 'app.serving.'):\n"
        "    __import__(module.name)\n"
        f"print('\\n'.join(m for m in sys.modules if m.startswith({TRAINING_ONLY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == []


def requirement_names(file_name: str) -> set[str]:
    """The packages a requirements file names itself (not through -r)."""
    lines = (PROJECT_ROOT / file_name).read_text().splitlines()
    return {
        line.split("==")[0].strip().lower()
        for line in lines
        if line.strip() and not line.startswith(("#", "-r"))
    }


def test_serving_requirements_leave_tensorflow_to_training() -> None:
    serving = requirement_names("requirements.txt")
    training = requirement_names("requirements-train.txt")
    assert not {"tensorflow", "tensorflow-cpu", "keras"} & serving
    assert {"tensorflow-cpu", "keras"} <= training
    assert "-r requirements.txt" in (PROJECT_ROOT / "requirements-train.txt").read_text()
    assert "-r requirements-train.txt" in (PROJECT_ROOT / "requirements-dev.txt").read_text()
