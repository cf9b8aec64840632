"""The vision library: pretrained weights really loaded, vectors, preprocessing, input safety."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.vision_fixtures import (
    CLOTHING,
    clothing_photos,
    drawn_pictures,
    drawn_tshirt,
    jpeg,
    png,
    png_header_only,
)
from vision import DEFAULT_MODEL, ImageEmbedder, load_model
from vision.errors import ImageTooLarge, ImageTooManyPixels, UnsupportedImage
from vision.imaging import ImageLimits, open_image, to_array
from vision.labels import imagenet_class_names
from vision.values import confident_label

FOOTWEAR = ("shoe", "sneaker", "clog", "sandal", "boot", "loafer")
TOPS = ("t-shirt", "sweatshirt", "jersey", "polo", "cardigan")


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder(load_model(DEFAULT_MODEL))


def test_imagenet_names_come_from_a_package() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000
    assert "T-shirt" in names and "sneaker" in names


def test_drawn_tshirt_is_called_a_tshirt(embedder: ImageEmbedder) -> None:
    """Needs no data set: a randomly initialised network could not name a drawing."""
    [emb] = embedder.embed_images([jpeg(drawn_tshirt())], top_k=5)
    assert emb.labels[0].name == "T-shirt", emb.labels
    assert emb.labels[0].probability > 0.2
    hint = confident_label(emb.labels, threshold=0.2)
    assert hint is not None and hint.name == "T-shirt"


def test_real_photos_top5_are_sensible(embedder: ImageEmbedder) -> None:
    if not CLOTHING.exists():
        pytest.skip(f"{CLOTHING} is absent: real-photo check needs ../shared/datasets/clothing")
    shoes = embedder.embed_images([p.read_bytes() for p in clothing_photos("Shoes", 4)], top_k=5)
    for emb in shoes:
        names = [label.name.lower() for label in emb.labels]
        assert any(word in name for name in names for word in FOOTWEAR), names
    tees = embedder.embed_images([p.read_bytes() for p in clothing_photos("T-Shirt", 4)], top_k=5)
    with_top = [
        emb for emb in tees if any(w in lab.name.lower() for lab in emb.labels for w in TOPS)
    ]
    assert len(with_top) >= 3, [[lab.name for lab in emb.labels] for emb in tees]


def test_batch_norms_folded_into_convolutions_change_no_output() -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from vision.models import fuse_batch_norms, lite_weights_path

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(lite_weights_path("efficientnet-lite0"), map_location="cpu")
    net.load_state_dict(state)
    net.eval()
    pictures = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net.extract_features(pictures)
        fuse_batch_norms(net)
        after = net.extract_features(pictures)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert torch.allclose(before, after, atol=1e-4)


def test_model_input_is_exactly_the_lite_scaling() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    array = to_array(Image.fromarray(pixels))
    expected = ((pixels.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)
    assert array.dtype == np.float32 and array.flags.c_contiguous
    assert np.array_equal(array, expected)  # bit for bit, not within a tolerance


def test_vectors_are_unit_float32_with_model_id(embedder: ImageEmbedder) -> None:
    embs = embedder.embed_images([jpeg(p) for p in drawn_pictures(3)])
    for emb in embs:
        assert emb.vector.dtype == np.float32
        assert emb.dim == embedder.dim == embedder.model.dim
        assert abs(float(np.linalg.norm(emb.vector)) - 1.0) < 1e-5
        assert emb.model == embedder.model_id and emb.model.startswith(DEFAULT_MODEL)
    assert float(embs[0].vector @ embs[1].vector) < 0.999  # different pictures differ


def test_exif_orientation_is_applied(embedder: ImageEmbedder) -> None:
    upright = drawn_tshirt(size=224)
    stored_sideways = upright.transpose(Image.Transpose.ROTATE_90)  # camera kept it rotated
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    a, b = embedder.embed_images([jpeg(upright), jpeg(stored_sideways, exif=exif.tobytes())])
    assert float(a.vector @ b.vector) > 0.99


def test_transparent_png_is_put_on_white() -> None:
    cutout = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    picture = open_image(png(cutout))
    assert picture.mode == "RGB" and picture.getpixel((5, 5)) == (255, 255, 255)


def test_input_safety_raises_typed_errors() -> None:
    with pytest.raises(ImageTooLarge) as too_big:
        open_image(b"\xff" * 101, ImageLimits(max_bytes=100))
    assert too_big.value.status == 413
    with pytest.raises(ImageTooManyPixels) as bomb:
        open_image(png_header_only(8000, 6000))  # 48 MP declared, nothing decoded
    assert bomb.value.status == 413
    with pytest.raises(ImageTooManyPixels):
        open_image(png_header_only(200_000, 200_000))  # Pillow's own bomb guard, same answer
    for junk in (b"%PDF-1.4 not a picture", b"", jpeg(drawn_tshirt())[:300]):
        with pytest.raises(UnsupportedImage) as bad:
            open_image(junk)
        assert bad.value.status == 415
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "ICO")
    with pytest.raises(UnsupportedImage):
        open_image(out.getvalue())  # a real image, but not a format we accept
