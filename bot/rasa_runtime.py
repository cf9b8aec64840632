"""Everything about running Rasa (Python 3.10, its own venv) from the app's side.

Writes Rasa's endpoints/credentials files from our settings, builds its command lines, trains
only when the training data changed, and checks that the tracker store really is the configured
database (Rasa silently falls back to an in-memory store on database errors).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.settings import Settings
from bot.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent


class TrackerStoreMismatch(RuntimeError):
    """Rasa is not writing conversations to the configured tracker database."""


def rasa_executable() -> str:
    configured = os.environ.get("RASA_BIN")
    candidates = [configured] if configured else []
    candidates += [str(ROOT / ".venv-rasa" / "bin" / "rasa"), shutil.which("rasa") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError(
        "Rasa is not installed: run `make setup` (creates .venv-rasa with rasa==3.6.21) "
        "or set RASA_BIN."
    )


def tracker_url(settings: Settings) -> str:
    if settings.rasa_tracker_db:
        return settings.rasa_tracker_db
    return f"sqlite:///{(settings.data_dir / 'rasa_tracker.db').resolve()}"


def tracker_store_config(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": parsed.database}
    config: dict[str, Any] = {
        "type": "SQL",
        "dialect": "postgresql",
        "url": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "db": parsed.database,
        "username": parsed.username,
    }
    if parsed.password:
        config["password"] = parsed.password
    return config


def write_runtime_files(settings: Settings) -> tuple[Path, Path]:
    """Rasa's endpoints.yml and credentials.yml under the data dir; returns their paths."""
    directory = (settings.data_dir / "rasa").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    endpoints: dict[str, Any] = {
        "action_endpoint": {"url": f"http://{settings.app_host}:{settings.app_port}/webhook"},
        "tracker_store": tracker_store_config(tracker_url(settings)),
    }
    if settings.redis_url:
        redis = make_url(settings.redis_url)
        endpoints["lock_store"] = {
            "type": "redis",
            "url": redis.host or "127.0.0.1",
            "port": redis.port or 6379,
            "db": int(redis.database or 0),
        }
    tracker = make_url(tracker_url(settings))
    if tracker.get_backend_name() == "sqlite" and tracker.database:
        _use_wal(Path(tracker.database))
    endpoints_path = directory / "endpoints.yml"
    credentials_path = directory / "credentials.yml"
    endpoints_path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    credentials_path.write_text(yaml.safe_dump({"rest": None}))
    return endpoints_path, credentials_path


def _use_wal(database: Path) -> None:
    """Put Rasa's SQLite tracker file in WAL mode (it persists in the file), so several Rasa
    processes and readers do not block each other on every turn's commit."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def rasa_env() -> dict[str, str]:
    return {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "HF_HUB_OFFLINE": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONWARNINGS": "ignore",
    }


def server_env() -> dict[str, str]:
    """Serving one message at a time needs no TensorFlow thread pools; several Rasa processes
    on a small machine would otherwise oversubscribe its cores."""
    return {
        **rasa_env(),
        "TF_INTER_OP_PARALLELISM_THREADS": "1",
        "TF_INTRA_OP_PARALLELISM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


def server_argv(settings: Settings, port: int) -> list[str]:
    endpoints, credentials = write_runtime_files(settings)
    rasa_python = Path(rasa_executable()).with_name("python")
    return [
        str(rasa_python),
        str(ROOT / "bot" / "rasa_boot.py"),
        "run",
        "--model",
        str(settings.rasa_model_dir.resolve()),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-api",
        "--log-file",
        str((settings.data_dir / f"rasa-{port}.log").resolve()),
    ]


def train(settings: Settings, force: bool = False) -> None:
    """Train the Rasa model; Rasa itself skips training when nothing changed (fingerprints)."""
    argv = [
        rasa_executable(),
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "nlu_data",
        "--out",
        str(settings.rasa_model_dir),
    ]
    if force:
        argv.append("--force")
    subprocess.run(argv, cwd=ROOT, env={**os.environ, **rasa_env()}, check=True)


def has_model(settings: Settings) -> bool:
    return any(settings.rasa_model_dir.glob("*.tar.gz"))


async def verify_tracker_store(rasa_url: str, url: str) -> None:
    """Write a probe event through Rasa and find it in the configured database."""
    sender = f"tracker-probe-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        endpoint = f"{rasa_url}/conversations/{sender}/tracker/events"
        probe = [{"event": "slot", "name": "order_gate", "value": None}]
        async with http.post(endpoint, json=probe) as r:
            if r.status != 200:
                raise TrackerStoreMismatch(f"Rasa refused the probe event ({r.status})")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            found = connection.execute(
                text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": sender}
            ).scalar_one()
            connection.execute(text("DELETE FROM events WHERE sender_id = :s"), {"s": sender})
    except Exception as error:
        raise TrackerStoreMismatch(f"cannot read Rasa's tracker database {url}: {error}") from error
    finally:
        engine.dispose()
    if not found:
        raise TrackerStoreMismatch(
            f"Rasa at {rasa_url} is not writing to {url}: it fell back to another tracker store. "
            "Check the tracker database settings and Rasa's log."
        )
