"""The `clip` registry entry loads a local transformers CLIP checkpoint: image and text towers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.vision_fixtures import drawn_pictures, jpeg
from vision import ImageEmbedder, ModelUnavailable, load_model
from vision.models import TransformersClip

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
Tokenizer, models = tokenizers.Tokenizer, tokenizers.models
pre_tokenizers, processors = tokenizers.pre_tokenizers, tokenizers.processors

WORDS = ["<|startoftext|>", "<|endoftext|>", "<unk>", "red", "blue", "dress", "shoe"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised CLIP (16-dim projections) saved like a real one."""
    folder = tmp_path_factory.mktemp("tiny-clip")
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)],
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=words,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
    )
    text = dict(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, bos_token_id=0,
                eos_token_id=1, pad_token_id=1)  # fmt: skip
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=2)  # fmt: skip
    torch.manual_seed(0)
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    checkpoint = folder / "tiny-clip"
    transformers.CLIPModel(config).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    return checkpoint


def test_clip_image_tower(checkpoint: Path) -> None:
    model = load_model("clip", clip_dir=checkpoint)
    assert isinstance(model, TransformersClip) and model.dim == 16
    embedder = ImageEmbedder(model)
    pictures = [jpeg(p) for p in drawn_pictures(3)]
    embs = embedder.embed_images(pictures)
    assert [e.dim for e in embs] == [16, 16, 16]
    assert embs[0].model == "clip:tiny-clip"
    for emb in embs:
        assert emb.vector.dtype == np.float32
        assert abs(float(np.linalg.norm(emb.vector)) - 1) < 1e-5
    assert embs[0].labels == ()  # no ImageNet head
    # Same numbers as transformers' own image tower on the same input.
    pixels = torch.from_numpy(embedder.prepare(pictures[0]))[None]
    with torch.inference_mode():
        reference = model.net.get_image_features(pixel_values=pixels).pooler_output[0].numpy()
    reference = reference / np.linalg.norm(reference)
    assert np.allclose(embs[0].vector, reference, atol=1e-5)


def test_clip_text_tower(checkpoint: Path) -> None:
    model = load_model("clip", clip_dir=checkpoint)
    assert isinstance(model, TransformersClip)
    vectors = model.embed_texts(["red dress", "blue shoe"])
    assert vectors.shape == (2, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.9999


def test_clip_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable):
        load_model("clip")
    with pytest.raises(ModelUnavailable):
        load_model("clip", clip_dir=tmp_path)
    with pytest.raises(ModelUnavailable):
        load_model("no_such_model")
