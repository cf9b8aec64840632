"""Application settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_docs() -> Path:
    from knowledge import DOCS_DIR

    return DOCS_DIR


class Settings(BaseSettings):
    """Every knob of the app; each field is an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str = ""
    app_host: str = "127.0.0.1"
    app_port: int = 8080
    app_public_url: str = ""
    rasa_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:5005"]
    )
    rasa_timeout_seconds: float = 30.0
    rasa_model_dir: Path = Path("models")
    rasa_tracker_db: str = ""
    redis_url: str = ""
    qdrant_url: str = ""  # set: a Qdrant server; unset: embedded Qdrant Edge in DATA_DIR/qdrant
    # HNSW candidates per vector search: recall against speed on big catalogs (Qdrant's own
    # default is 100; at 1M vectors 256 lifted recall@10 from 0.85 to 0.93 for ~1 ms more)
    vector_search_ef: int = Field(default=256, ge=1)
    # the vision service (photo search); `bot run` starts one here unless VISION_URL is set
    vision_url: str = "http://127.0.0.1:8090"
    knowledge_docs: Path = Field(default_factory=_default_docs)  # markdown FAQ/policy documents
    recsys_train_hours: float = 24.0  # retrain recommendations this often (0: never in the app)
    rasa_session_turns: int = 20
    return_window_days: int = 30
    verify_max_failures: int = 5
    verify_lockout_minutes: int = 15
    max_message_chars: int = 4000
    outbox_retry_seconds: float = 5.0
    # Telegram (off while the token is unset; see docs/telegram.md)
    telegram_bot_token: str = ""
    telegram_webhook_url: str = ""  # set: webhook mode behind this app; unset: long polling
    telegram_webhook_secret: str = ""
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    telegram_max_photo_bytes: int = 10 * 1024 * 1024
    telegram_poll_lease_seconds: float = 30.0
    telegram_messages_per_s: float = 30.0  # the bot's overall budget (Telegram's own limit)
    # Campaigns (see the README's "Campaigns")
    campaign_rate_per_s: float = 25.0  # campaign messages/s; Telegram allows ~30/s per bot
    campaign_sender: bool = True  # run the sender here (one instance at a time holds a lease)
    # Human support (see docs/console.md)
    secret_key: str = ""  # signs console sessions; unset: generated once into DATA_DIR
    support_hours: str = "mon-fri 09:00-18:00, sat 10:00-14:00"
    support_timezone: str = "Europe/Berlin"
    console_idle_minutes: int = 30
    csat_window_hours: int = 24  # how long after a resolve the 1-5 rating is accepted

    @field_validator("rasa_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'shop.db'}"

    @property
    def public_url(self) -> str:
        return self.app_public_url or f"http://{self.app_host}:{self.app_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
