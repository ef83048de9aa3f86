"""Writes the benchmark dataset: N 320x240 JPEGs with 5 boxes each, as a `FiftyOneDataset`
directory exported by FiftyOne itself (so both sides start from what FiftyOne writes).

    python bench/gen.py OUT_DIR N [--seed 51]

Deterministic for a given N and seed (images and labels; FiftyOne mints the ids).
"""

import argparse
import os
import random
import shutil
import tempfile

from PIL import Image, ImageDraw

import fiftyone as fo

from common import CLASSES, BOXES, WIDTH, HEIGHT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=51)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    shutil.rmtree(a.out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        samples = []
        for i in range(a.n):
            img = Image.new("RGB", (WIDTH, HEIGHT), tuple(rng.randrange(256) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            dets = []
            for _ in range(BOXES):
                bw, bh = round(rng.uniform(0.05, 0.3), 4), round(rng.uniform(0.05, 0.3), 4)
                x, y = round(rng.uniform(0, 1 - bw), 4), round(rng.uniform(0, 1 - bh), 4)
                draw.rectangle(
                    [x * WIDTH, y * HEIGHT, (x + bw) * WIDTH, (y + bh) * HEIGHT],
                    fill=tuple(rng.randrange(256) for _ in range(3)),
                )
                dets.append(fo.Detection(label=rng.choice(CLASSES), bounding_box=[x, y, bw, bh]))
            path = os.path.join(tmp, f"{i:06d}.jpg")
            img.save(path, quality=85)
            samples.append(fo.Sample(filepath=path, ground_truth=fo.Detections(detections=dets)))
        ds = fo.Dataset()
        ds.add_samples(samples, progress=False)
        ds.compute_metadata(progress=False)
        ds.export(export_dir=a.out, dataset_type=fo.types.FiftyOneDataset, export_media=True,
                  progress=False)
        ds.delete()
    print(f"gen.py: {a.n} samples in {a.out}")


if __name__ == "__main__":
    main()
