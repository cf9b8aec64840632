"""`bot run`: the Rasa server(s), the vision service and the app as supervised child processes.

The vision service is started here unless `VISION_URL` names one that runs elsewhere.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

from bot.rasa_runtime import (
    ROOT,
    TrackerStoreMismatch,
    has_model,
    server_argv,
    server_env,
    tracker_url,
    verify_tracker_store,
)
from bot.settings import Settings
from bot.supervisor import ChildSpec, Supervisor
from vision.launcher import service_command, service_environment


def rasa_ports(settings: Settings, processes: int) -> list[int]:
    if processes > 0:
        first = urlparse(settings.rasa_urls[0]).port or 5005
        return [first + i for i in range(processes)]
    return [urlparse(url).port or 5005 for url in settings.rasa_urls]


def child_specs(settings: Settings, ports: list[int]) -> list[ChildSpec]:
    rasa_urls = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    specs = [
        ChildSpec(
            name=f"rasa{i + 1}" if len(ports) > 1 else "rasa",
            argv=server_argv(settings, port),
            env=server_env(),
            cwd=ROOT,
            health_url=f"http://127.0.0.1:{port}/status",
            health_timeout_s=300.0,
        )
        for i, port in enumerate(ports)
    ]
    vision = vision_spec(settings)
    if vision is not None:
        specs.append(vision)
    specs.append(
        ChildSpec(
            name="app",
            argv=[sys.executable, "-m", "bot.cli", "serve"],
            env={"RASA_URLS": rasa_urls, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            health_url=f"http://{settings.app_host}:{settings.app_port}/healthz",
            depends_on=tuple(spec.name for spec in specs if spec.name != "vision"),
        )
    )
    return specs


def vision_spec(settings: Settings) -> ChildSpec | None:
    """The local vision service, or None when `VISION_URL` points at one run elsewhere.

    Its environment carries the malloc thresholds (glibc reads them only at exec), and it is
    healthy once the model is loaded and warmed (`/readyz`). The app does not wait for it: photo
    search answers "briefly unavailable" until it is ready.
    """
    if "vision_url" in settings.model_fields_set:
        return None
    url = urlparse(settings.vision_url)
    host, port = url.hostname or "127.0.0.1", url.port or 8090
    return ChildSpec(
        name="vision",
        argv=service_command(["--host", host, "--port", str(port)]),
        env=service_environment({}),
        cwd=ROOT,
        health_url=f"http://{host}:{port}/readyz",
        health_timeout_s=300.0,
    )


async def run_all(settings: Settings, rasa_processes: int = 0) -> int:
    if not has_model(settings):
        print("No trained Rasa model in", settings.rasa_model_dir, "- run `bot train` first.")
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ports = rasa_ports(settings, rasa_processes)
    supervisor: Supervisor
    refused: list[str] = []

    async def on_ready() -> None:
        for port in ports:
            try:
                await verify_tracker_store(f"http://127.0.0.1:{port}", tracker_url(settings))
            except TrackerStoreMismatch as error:
                print(f"refusing to run: {error}", flush=True)
                refused.append(str(error))
                await supervisor.stop()
                return
        print(
            f"\n  Shop assistant is ready. Open the web chat: {settings.public_url}/\n"
            f"  Chat API: POST {settings.public_url}/api/v1/chat   (Ctrl-C stops everything)\n",
            flush=True,
        )

    supervisor = Supervisor(child_specs(settings, ports), on_ready=on_ready)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    code = await supervisor.run()
    return 3 if refused else code
