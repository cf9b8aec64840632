"""`bot eval photo-search`: the CSV contract, leave-one-out precision, and the command itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.vision_fixtures import drawn_pictures, drawn_tshirt, jpeg
from vision.evaluation import neighbour_precision, read_labelled_images


def write_set(folder: Path) -> Path:
    pictures = [drawn_tshirt((200, 30, 30)), drawn_tshirt((30, 30, 200)), *drawn_pictures(3)]
    for i, picture in enumerate(pictures):
        (folder / f"img{i}.jpg").write_bytes(jpeg(picture))
    labels = folder / "labels.csv"
    labels.write_text(
        "image,label,kids\n"
        "img0,T-Shirt,False\nimg1.jpg,T-Shirt,False\nimg2,Other,False\n"
        "img3,Hat,True\nimg4,Hat,False\n"
    )
    return labels


def test_csv_rows_with_or_without_extension_and_exclusions(tmp_path: Path) -> None:
    labels = write_set(tmp_path)
    rows = read_labelled_images(tmp_path, labels)
    assert [(r.path.name, r.label) for r in rows] == [
        ("img0.jpg", "T-Shirt"), ("img1.jpg", "T-Shirt"), ("img3.jpg", "Hat"), ("img4.jpg", "Hat"),
    ]  # fmt: skip
    assert len(read_labelled_images(tmp_path, labels, exclude_labels=())) == 5
    labels.write_text("image,label\nmissing,Hat\n")
    with pytest.raises(FileNotFoundError):
        read_labelled_images(tmp_path, labels)


def test_leave_one_out_precision() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    perfect = neighbour_precision(vectors, ["a", "a", "b", "b"], "m")
    assert perfect.precision_at_1 == 1.0 and perfect.n == 4
    assert perfect.random_precision == pytest.approx(1 / 3)
    swapped = neighbour_precision(vectors, ["a", "b", "a", "b"], "m")
    assert swapped.precision_at_1 == 0.0
    expanded = neighbour_precision(vectors, ["a", "a", "b", "b"], "m", query_expansion=1)
    assert expanded.model == "m+qe1" and expanded.precision_at_1 == 1.0


def test_command_prints_the_json(tmp_path: Path) -> None:
    labels = write_set(tmp_path)
    result = CliRunner().invoke(
        app,
        ["eval", "photo-search", "--images", str(tmp_path), "--labels", str(labels),
         "--model", "efficientnet_lite0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(body) == {"model", "n", "precision_at_1", "precision_at_5", "precision_at_10",
                         "random_precision"}  # fmt: skip
    assert body["n"] == 4 and body["model"].startswith("efficientnet_lite0:")
    assert body["precision_at_1"] == 1.0  # the two shirts find each other, so do the drawings
