"""What the CPU forward pass gains from its two switches, measured in one process.

    .venv/bin/python bench/vision_forward.py [--model efficientnet_lite0] [--threads 2]

Images/s of the model's forward pass alone (random prepared batches, each image with the
model's views) at batch 1 and 8, for the four combinations of: batch norms folded into the
convolutions (`vision.models.fuse_batch_norms`, done at load) and channels_last memory format
(what `ImageEmbedder` uses). Run it under the service's malloc settings for the figures the
service sees (`bench/vision_bench.py` starts children that way). Writes
bench/results/vision_forward.json. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.common import machine_info, ratio, write_result  # noqa: E402
from vision import models  # noqa: E402
from vision.launcher import malloc_tuned  # noqa: E402


def images_per_s(model: models.ImageModel, batch: int, fmt: torch.memory_format, s: float) -> float:
    size = model.input_size
    pictures = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    with torch.inference_mode():
        for _ in range(3):
            model.forward(pictures)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < s:
            model.forward(pictures)
            done += batch
    return round(done / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fold = models.fuse_batch_norms
    results: dict[str, dict[str, float]] = {}
    for folded in (False, True):
        models.fuse_batch_norms = fold if folded else (lambda net: None)
        model = models.load_model(args.model)
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model.module().to(memory_format=fmt)  # type: ignore[call-overload]
            key = f"bn_folded={folded} channels_last={channels_last}"
            results[key] = {f"batch_{b}": images_per_s(model, b, fmt, args.seconds) for b in (1, 8)}
            print(key, results[key], flush=True)
    models.fuse_batch_norms = fold
    before = results["bn_folded=False channels_last=False"]
    after = results["bn_folded=True channels_last=True"]
    summary = {
        f"speedup_batch_{b}": ratio(after[f"batch_{b}"], before[f"batch_{b}"]) for b in (1, 8)
    }
    print(summary)
    result = {"machine": machine_info(), "model": args.model, "threads": args.threads}
    result |= {"malloc_tuned": malloc_tuned(), "images_per_s": results, **summary}
    path = write_result("vision_forward", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
