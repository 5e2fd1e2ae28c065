"""Settings from environment variables (prefix DIGIT_CANVAS_), with sensible defaults."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.paths import DATA_DIR, DEFAULT_MODEL_PATH, SEED_MODEL_PATH

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
LogFormat = Literal["text", "json"]


def _env(name: str, *plain: str) -> AliasChoices:
    """Accept DIGIT_CANVAS_<NAME>, and the plain names containers conventionally use."""
    return AliasChoices(f"DIGIT_CANVAS_{name}", *plain)


class Settings(BaseSettings):
    """The server's settings; `create_app` and `python -m app.serve` read them once."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    model_path: Annotated[Path, Field(validation_alias=_env("MODEL_PATH"))] = DEFAULT_MODEL_PATH
    # The book's recipe, served beside the default for ?model=seed when the file is there.
    seed_model_path: Annotated[Path, Field(validation_alias=_env("SEED_MODEL_PATH"))] = (
        SEED_MODEL_PATH
    )
    max_request_bytes: Annotated[int, Field(gt=0, validation_alias=_env("MAX_REQUEST_BYTES"))] = (
        10 * 1024 * 1024
    )
    # 784 numbers as JSON take about 16 kB; more than this is not a pixel array.
    max_pixels_request_bytes: Annotated[
        int, Field(gt=0, validation_alias=_env("MAX_PIXELS_REQUEST_BYTES"))
    ] = 256 * 1024
    max_image_pixels: Annotated[int, Field(gt=0, validation_alias=_env("MAX_IMAGE_PIXELS"))] = (
        4096 * 4096
    )
    max_image_side: Annotated[int, Field(gt=0, validation_alias=_env("MAX_IMAGE_SIDE"))] = 8192
    max_batch_images: Annotated[int, Field(gt=0, validation_alias=_env("MAX_BATCH_IMAGES"))] = 64
    # Images other than canvas exports are decoded in processes of their own (see
    # app.serving.isolation): this many at once per server process, this many more waiting.
    decode_slots: Annotated[int, Field(gt=0, validation_alias=_env("DECODE_SLOTS"))] = 2
    decode_queue: Annotated[int, Field(ge=0, validation_alias=_env("DECODE_QUEUE"))] = 16
    decode_cpu_seconds: Annotated[int, Field(gt=0, validation_alias=_env("DECODE_CPU_SECONDS"))] = 2
    # Address space, the ~290 MB of libraries included: a 4096x4096 RGBA image needs ~200 MB.
    decode_memory_mb: Annotated[int, Field(gt=0, validation_alias=_env("DECODE_MEMORY_MB"))] = 768
    # Slow and idle clients (see app.serving.connections): 408 past these, and 503 for
    # requests beyond this many connections and requests at once per server process.
    header_timeout_seconds: Annotated[
        float, Field(gt=0, validation_alias=_env("HEADER_TIMEOUT_SECONDS"))
    ] = 10.0
    body_timeout_seconds: Annotated[
        float, Field(gt=0, validation_alias=_env("BODY_TIMEOUT_SECONDS"))
    ] = 60.0
    max_connections: Annotated[int, Field(gt=0, validation_alias=_env("MAX_CONNECTIONS"))] = 1000
    # Corrections (see app.serving.corrections): SQLite in the data directory by default;
    # postgresql+psycopg://user:password@host/database for several replicas.
    database_url: Annotated[str, Field(validation_alias=_env("DATABASE_URL"))] = (
        f"sqlite:///{DATA_DIR / 'corrections.sqlite3'}"
    )
    max_corrections: Annotated[int, Field(gt=0, validation_alias=_env("MAX_CORRECTIONS"))] = (
        1_000_000
    )
    corrections_per_minute: Annotated[
        int, Field(gt=0, validation_alias=_env("CORRECTIONS_PER_MINUTE"))
    ] = 30
    # The uploaded drawing itself is kept only when this is on: the model's 28x28 input is.
    keep_uploaded_images: Annotated[bool, Field(validation_alias=_env("KEEP_UPLOADED_IMAGES"))] = (
        False
    )
    cors_origins: Annotated[list[str], NoDecode, Field(validation_alias=_env("CORS_ORIGINS"))] = []
    # Addresses (or networks, or "*") of proxies whose X-Forwarded-For gives the client's
    # address, as the corrections' per-client rate limit needs behind a load balancer;
    # none by default: a client could claim any address.
    forwarded_allow_ips: Annotated[
        list[str], NoDecode, Field(validation_alias=_env("FORWARDED_ALLOW_IPS"))
    ] = []
    log_level: Annotated[LogLevel, Field(validation_alias=_env("LOG_LEVEL", "LOG_LEVEL"))] = "info"
    # text: uvicorn's (and gunicorn's) readable lines; json: one JSON object per line, a
    # request's included (see app.serving.request_logs and app.serving.json_logs).
    log_format: Annotated[LogFormat, Field(validation_alias=_env("LOG_FORMAT", "LOG_FORMAT"))] = (
        "text"
    )
    # GET /metrics on the public port when unset; otherwise only on this port, which a load
    # balancer in front of the public one never reaches (see app.serving.metrics).
    metrics_port: Annotated[
        int | None, Field(gt=0, lt=65536, validation_alias=_env("METRICS_PORT"))
    ] = None
    host: Annotated[str, Field(validation_alias=_env("HOST", "HOST"))] = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536, validation_alias=_env("PORT", "PORT"))] = 8000
    workers: Annotated[int, Field(gt=0, validation_alias=_env("WORKERS", "WORKERS"))] = 1

    @field_validator("cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def split_list(cls, value: object) -> object:
        """A comma-separated list, as one writes it in an environment variable."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def ports(self) -> list[int]:
        """The ports the server listens on: the public one, and the metrics one if set."""
        return [self.port] if self.metrics_port is None else [self.port, self.metrics_port]

    @model_validator(mode="after")
    def metrics_apart(self) -> "Settings":
        if self.metrics_port == self.port:
            raise ValueError(f"the metrics port must differ from the public port {self.port}")
        return self
