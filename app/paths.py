"""Where the project's files are, from this file's location (never the working directory)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
DEFAULT_MODEL_PATH = MODELS_DIR / "mnist_dense.keras"
SEED_MODEL_PATH = MODELS_DIR / "mnist_dense_seed.keras"
STATIC_DIR = PROJECT_ROOT / "static"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
DATA_DIR = PROJECT_ROOT / "data"  # the default home of the corrections database
