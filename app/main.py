"""The application for ASGI servers, with settings from the environment:
`uvicorn app.main:app`, `fastapi run`. (`python -m app.serve` runs it, with workers.)"""

from app.serving.application import create_app

app = create_app()
