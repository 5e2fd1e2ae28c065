"""The models the server answers with: the served default and, beside it, the book's recipe."""

import logging
from dataclasses import dataclass
from typing import Any, Literal

from app.serving.inference import DenseClassifier
from app.serving.model_file import calibrated, load_classifier, read_model_card
from app.serving.settings import Settings

logger = logging.getLogger("uvicorn.error")

ModelName = Literal["default", "seed"]
DESCRIPTIONS: dict[str, str] = {
    "default": "The served model: the book's network trained on augmented digits, with early "
    "stopping and a cosine learning rate.",
    "seed": "The book's recipe exactly (Deep Learning with Python, chapter 2): rmsprop, "
    "5 epochs, batch 128, no augmentation.",
}


@dataclass(frozen=True)
class ServedModel:
    name: str
    description: str
    classifier: DenseClassifier
    card: dict[str, Any]


def load_served_models(settings: Settings) -> dict[str, ServedModel]:
    """The default model (it must load), and the book's when its file is there."""
    paths = {"default": settings.model_path, "seed": settings.seed_model_path}
    models = {}
    for name, path in paths.items():
        if name != "default" and not path.is_file():
            logger.info("No %s model at %s: only the default is served", name, path)
            continue
        card = read_model_card(path)
        classifier = calibrated(load_classifier(path), card)
        models[name] = ServedModel(name, DESCRIPTIONS[name], classifier, card)
    return models
