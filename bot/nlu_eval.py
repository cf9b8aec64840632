"""`bot nlu-eval FILE.csv [--map MAP.yml]`: intent accuracy of the trained Rasa model.

Reads `text,intent` rows, renames foreign intent labels with the map (a YAML mapping
`their_label: our_intent`; `skip` drops the row), starts a Rasa server of its own on a free
loopback port with the newest model (no server needs to be running, no action endpoint is
needed for `/model/parse`), parses every text once, stops the server (also on errors and
Ctrl-C) and prints JSON: n, accuracy, macro-F1 (over the intents present in the file),
per-intent precision/recall/F1/support, the most frequent confusions and the parse latency of
one message through the server. A prediction of `nlu_fallback` counts as `out_of_scope`.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import yaml

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
SKIP = "skip"

# A group whose callback is the command: `bot nlu-eval FILE.csv --map MAP.yml` (options may
# follow the file because the group takes no subcommands).
nlu_eval_app = typer.Typer(
    help="Evaluate intent classification of the latest trained model on a CSV file.",
    context_settings={"allow_interspersed_args": True},
)


class NluEvalError(RuntimeError):
    """Bad input file or a Rasa server that did not come up."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def load_map(path: Path | None) -> dict[str, str]:
    """A YAML mapping of foreign intent labels to ours (`skip` drops the row)."""
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise NluEvalError(f"{path}: expected a mapping `their_label: our_intent`")
    return {str(k).strip(): str(v).strip() for k, v in data.items()}


def read_examples(path: Path, mapping: dict[str, str]) -> tuple[list[Example], int]:
    """Rows of `text,intent` (header required, any other columns ignored); returns the
    examples to evaluate and how many rows were skipped (mapped to `skip` or empty)."""
    examples: list[Example] = []
    skipped = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        if "text" not in fields or "intent" not in fields:
            raise NluEvalError(f"{path}: needs a header with the columns text,intent")
        for row in reader:
            text = (row.get(fields["text"]) or "").strip()
            label = (row.get(fields["intent"]) or "").strip()
            intent = mapping.get(label, label)
            if not text or not intent or intent == SKIP:
                skipped += 1
                continue
            examples.append(Example(text, intent))
    return examples, skipped


def normalise_prediction(intent: str | None) -> str:
    if not intent or intent == FALLBACK_INTENT:
        return OUT_OF_SCOPE
    return intent


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def score(pairs: Sequence[tuple[str, str]], top: int = 10) -> dict[str, Any]:
    """Metrics for (expected, predicted) pairs. Per-intent figures cover every label seen on
    either side; macro-F1 averages the intents that occur in the expected labels."""
    expected = Counter(e for e, _ in pairs)
    predicted = Counter(p for _, p in pairs)
    correct = Counter(e for e, p in pairs if e == p)
    per_intent: dict[str, dict[str, float | int]] = {}
    for intent in sorted(set(expected) | set(predicted)):
        precision = _ratio(correct[intent], predicted[intent])
        recall = _ratio(correct[intent], expected[intent])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": expected[intent],
        }
    confusions = Counter((e, p) for e, p in pairs if e != p)
    gold = [i for i in per_intent if expected[i]]
    macro = sum(float(per_intent[i]["f1"]) for i in gold) / len(gold) if gold else 0.0
    return {
        "n": len(pairs),
        "accuracy": round(_ratio(sum(correct.values()), len(pairs)), 4),
        "macro_f1": round(macro, 4),
        "per_intent": per_intent,
        "top_confusions": [
            {"expected": e, "predicted": p, "count": c}
            for (e, p), c in sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ],
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def latest_model(model: Path) -> Path:
    """`model` itself when it is a file, else the newest models/*.tar.gz in it."""
    if model.is_file():
        return model
    if not model.is_dir():
        raise NluEvalError(f"{model} does not exist")
    candidates = sorted(model.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise NluEvalError(f"no trained model in {model}: run `bot train` first")
    return candidates[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ParseClient:
    """Keep-alive HTTP client for Rasa's `/model/parse`."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self._port = port
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self._port, timeout=self._timeout
                )
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ready(self) -> bool:
        try:
            status, body = self._request("GET", "/status")
        except OSError:
            return False
        return status == 200 and bool(json.loads(body or b"{}").get("model_id"))

    def parse(self, text: str) -> dict[str, Any]:
        status, body = self._request("POST", "/model/parse", json.dumps({"text": text}).encode())
        if status != 200:
            raise NluEvalError(f"/model/parse answered {status}: {body[:200]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def rasa_parse_server(model: Path, startup_timeout: float = 300.0) -> Iterator[ParseClient]:
    """A Rasa server of our own (own process group, temporary working directory so no stray
    endpoints.yml is picked up) that is stopped when the block ends, however it ends."""
    from bot.rasa_runtime import rasa_executable, server_env

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="nlu-eval-"))
    log_path = workdir / "rasa.log"
    argv = [
        rasa_executable(),
        "run",
        "--enable-api",
        "--model",
        str(model.resolve()),
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-file",
        str(log_path),
    ]
    env = {**os.environ, **server_env()}
    with (workdir / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    # SIGTERM unwinds like Ctrl-C, so the server is stopped either way.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    client = ParseClient(port)
    try:
        deadline = time.monotonic() + startup_timeout
        while not client.ready():
            if process.poll() is not None:
                raise NluEvalError(
                    f"Rasa exited with {process.returncode} before it was ready:\n"
                    + _log_tail(workdir / "stdout.log")
                    + _log_tail(log_path)
                )
            if time.monotonic() > deadline:
                raise NluEvalError(f"Rasa was not ready after {startup_timeout:.0f} s")
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        _stop(process)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for leftover in sorted(workdir.rglob("*"), reverse=True):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
            else:
                leftover.rmdir()
        workdir.rmdir()


def predict(client: ParseClient, texts: Iterable[str]) -> tuple[list[str], list[float]]:
    """Predicted intent of every text and the wall time (ms) of each parse request."""
    predictions: list[str] = []
    latencies: list[float] = []
    client.parse("warm up")
    for text in texts:
        started = time.perf_counter()
        result = client.parse(text)
        latencies.append((time.perf_counter() - started) * 1000)
        predictions.append(normalise_prediction((result.get("intent") or {}).get("name")))
    return predictions, latencies


def evaluate(
    examples: Sequence[Example], client: ParseClient, top: int = 10
) -> tuple[dict[str, Any], list[str]]:
    predictions, latencies = predict(client, (e.text for e in examples))
    report = score([(e.intent, p) for e, p in zip(examples, predictions, strict=True)], top)
    report["parse_latency_ms"] = {
        "p50": round(percentile(latencies, 50), 2),
        "p95": round(percentile(latencies, 95), 2),
    }
    return report, predictions


@nlu_eval_app.callback(invoke_without_command=True)
def nlu_eval(
    file: Annotated[
        Path, typer.Argument(help="CSV with the columns text,intent.", exists=True, dir_okay=False)
    ],
    map_file: Annotated[
        Path | None,
        typer.Option(
            "--map", help="YAML: their_label: our_intent (or skip).", exists=True, dir_okay=False
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model file or directory (default: newest in RASA_MODEL_DIR)."),
    ] = None,
    errors: Annotated[
        Path | None, typer.Option(help="Write the misclassified rows to this CSV.")
    ] = None,
    top: Annotated[int, typer.Option(help="How many confusions to list.")] = 10,
) -> None:
    """Parse every text with the latest trained model and print accuracy, macro-F1,
    per-intent figures, top confusions and parse latency as JSON."""
    from bot.settings import get_settings

    try:
        examples, skipped = read_examples(file, load_map(map_file))
        if not examples:
            raise NluEvalError(f"{file}: no rows to evaluate")
        model_path = latest_model(model or get_settings().rasa_model_dir)
        typer.echo(f"parsing {len(examples)} messages with {model_path.name}", err=True)
        with rasa_parse_server(model_path) as client:
            report, predictions = evaluate(examples, client, top)
    except NluEvalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    latency = report["parse_latency_ms"]
    typer.echo(
        f"parse latency per message: p50 {latency['p50']} ms, p95 {latency['p95']} ms", err=True
    )
    if errors is not None:
        with errors.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "intent", "predicted"])
            for example, predicted in zip(examples, predictions, strict=True):
                if predicted != example.intent:
                    writer.writerow([example.text, example.intent, predicted])
    report = {"model": model_path.name, "skipped": skipped, **report}
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
