"""The framework floor: the same upload through FastAPI and uvicorn, answered without work.

`POST /api/predict` receives the multipart upload as Digit Canvas does (`UploadFile`, read
whole) and returns a fixed prediction through the same response model. What Digit Canvas
serves beyond this rate is lost to preprocessing and the network; `make bench` reports the
share of this floor that the real service reaches.

    uvicorn bench.floor_server:app --loop asyncio --http httptools
"""

from typing import Annotated

from fastapi import FastAPI, File, UploadFile

from app.serving.schemas import Prediction

FIXED = Prediction(digit=7, confidence=0.91, probabilities=[0.01] * 9 + [0.91])

app = FastAPI(title="Framework floor")


@app.post("/api/predict", response_model_exclude_none=True)
async def predict(file: Annotated[UploadFile, File()]) -> Prediction:
    await file.read()
    return FIXED
