"""The slow baseline: a digit classifier served the way typical tutorials do it.

Per request: the upload is opened with Pillow, converted to grey, inverted, squashed to 28x28
whatever its aspect ratio or position, and passed to Keras' `model.predict`. The endpoint is a
plain `def`, so FastAPI at least runs it in its thread pool (many tutorials write `async def`
and block the event loop, which would be slower still).

    uvicorn bench.naive_server:app
"""

import io
import os
from pathlib import Path

import keras
import numpy as np
from fastapi import FastAPI, File, UploadFile
from PIL import Image, ImageOps

from app.paths import DEFAULT_MODEL_PATH

model = keras.saving.load_model(Path(os.environ.get("DIGIT_CANVAS_MODEL_PATH", DEFAULT_MODEL_PATH)))
app = FastAPI(title="Naive digit classifier")


@app.post("/api/predict")
def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 - FastAPI's own idiom
    image = Image.open(io.BytesIO(file.file.read())).convert("L")
    image = ImageOps.invert(image).resize((28, 28))
    pixels = np.asarray(image, dtype="float32").reshape(1, 784) / 255.0
    probabilities = model.predict(pixels, verbose=0)[0]
    return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()}
