"""FiftyOne side of the interop test (tests/fiftyone_interop.rs).

    export OUT_DIR DUMP.json   build a dataset with every label type, export it as a
                               FiftyOneDataset and dump FiftyOne's view of it
    verify DIR EXPECTED.json   import DIR with fo.Dataset.from_dir and compare FiftyOne's view
                               with EXPECTED.json; print every difference and exit 1 on any
    dump DIR OUT.json          import DIR with fo.Dataset.from_dir and dump FiftyOne's view

A dump is {"samples": {id: {field: value}}, "frames": {sample_id: {frame_number: {...}}},
"schema": {...}, "frame_schema": {...}}, normalised so JSON can carry it: ObjectIds as hex,
arrays (masks) as {"__ndarray__": {"shape", "dtype", "sha256"}}, NaN as "NaN"; per-sample
housekeeping (created_at, last_modified_at, _dataset_id) is left out.
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
from bson import ObjectId
import fiftyone as fo
import fiftyone.core.utils as fou
from PIL import Image

SKIP = {"created_at", "last_modified_at", "_dataset_id", "_sample_id"}


def norm(v, key=None):
    if isinstance(v, dict):
        return {k: norm(x, k) for k, x in v.items() if k not in SKIP}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        arr = fou.deserialize_numpy_array(bytes(v))
        return {"__ndarray__": {"shape": list(arr.shape), "dtype": str(arr.dtype),
                                "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()}}
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, np.ndarray):
        return norm(v.tolist())
    return v


def schema(fields):
    out = {}
    for name, f in fields.items():
        doc = getattr(f, "document_type", None)
        out[name] = [type(f).__name__, doc.__name__ if doc is not None else None]
    return out


def dump(ds):
    samples, frames = {}, {}
    for s in ds.iter_samples():
        samples[s.id] = norm(s.to_mongo_dict(include_id=True))
        if ds.media_type == "video":
            frames[s.id] = {str(n): norm(f.to_mongo_dict(include_id=True)) for n, f in s.frames.items()}
    out = {"media_type": ds.media_type, "samples": samples, "schema": schema(ds.get_field_schema())}
    if ds.media_type == "video":
        out["frames"] = frames
        out["frame_schema"] = schema(ds.get_frame_field_schema())
    return out


def build_images(work):
    os.makedirs(os.path.join(work, "media"), exist_ok=True)
    rng = np.random.default_rng(7)
    samples = []
    for i in range(4):
        path = os.path.join(work, "media", f"img{i}.png")
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
        seg_path = os.path.join(work, "media", f"seg{i}.png")
        Image.fromarray((rng.integers(0, 3, (48, 64))).astype(np.uint8)).save(seg_path)
        det_mask = rng.integers(0, 2, (10, 15)).astype(bool)
        s = fo.Sample(filepath=path, tags=["train"] if i % 2 == 0 else ["val", "hard"])
        s["cls"] = fo.Classification(label="cat", confidence=0.9, logits=np.array([0.1, 0.9]))
        s["clss"] = fo.Classifications(classifications=[
            fo.Classification(label="indoor"), fo.Classification(label="day", confidence=0.5)])
        s["ground_truth"] = fo.Detections(detections=[
            fo.Detection(label="car", bounding_box=[0.1, 0.2, 0.3, 0.4], occluded=True, color="red",
                         iscrowd=0, tags=["checked"]),
            fo.Detection(label="person", bounding_box=[0.5, 0.5, 0.2, 0.3], mask=det_mask,
                         confidence=0.8, index=3),
        ])
        s["polylines"] = fo.Polylines(polylines=[
            fo.Polyline(label="lane", points=[[(0.1, 0.1), (0.5, 0.2), (0.9, 0.3)]], closed=False, filled=False),
            fo.Polyline(label="pool", points=[[(0.6, 0.6), (0.9, 0.6), (0.9, 0.9)]], closed=True, filled=True,
                        depth=2.5),
        ])
        s["kps"] = fo.Keypoints(keypoints=[
            fo.Keypoint(label="face", points=[(0.2, 0.3), (0.25, 0.3), (float("nan"), float("nan"))],
                        confidence=[0.9, 0.8, float("nan")], index=1)])
        s["seg"] = fo.Segmentation(mask=rng.integers(0, 3, (48, 64)).astype(np.uint8))
        s["seg_path"] = fo.Segmentation(mask_path=seg_path)
        s["legacy"] = fo.Classification(label="x", attributes={"make": fo.CategoricalAttribute(value="vw")})
        s["n_int"], s["n_float"], s["n_str"], s["n_bool"] = i, i / 2, f"s{i}", i % 2 == 0
        samples.append(s)
    ds = fo.Dataset()
    ds.add_samples(samples)
    ds.compute_metadata()
    ds.classes = {"ground_truth": ["car", "person", "bike"]}
    ds.default_classes = ["car", "person", "bike", "cat"]
    ds.mask_targets = {"seg": {1: "road", 2: "sky"}}
    ds.info = {"author": "interop"}
    ds.save()
    return ds


def build_video(work):
    s = fo.Sample(filepath=os.path.join(work, "media", "v0.mp4"))
    s["vid_label"] = fo.Classification(label="traffic")
    for n in range(1, 4):
        s.frames[n]["dets"] = fo.Detections(detections=[
            fo.Detection(label="car", bounding_box=[0.1 * n, 0.1, 0.2, 0.2], index=1, keyframe=n == 1,
                         occluded=False),
            fo.Detection(label="person", bounding_box=[0.5, 0.5, 0.1, 0.2], index=2, keyframe=True),
        ])
        s.frames[n]["weather"] = fo.Classification(label="sunny")
        s.frames[n]["frame_score"] = float(n)
    ds = fo.Dataset()
    ds.add_sample(s)
    return ds


def diff(want, got, path, out):
    """Appends every difference; an absent key and a null value are the same to FiftyOne
    (to_mongo_dict materialises some defaults, e.g. Keypoint.confidence, as None)."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                if want[k] is not None:
                    out.append(f"{path}.{k}: missing (expected {json.dumps(want[k])[:200]})")
            else:
                diff(want[k], got[k], f"{path}.{k}", out)
        for k in got:
            if k not in want and got[k] is not None:
                out.append(f"{path}.{k}: unexpected {json.dumps(got[k])[:200]}")
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: expected {len(want)} items, found {len(got)}: "
                       f"expected {json.dumps(want)[:300]} found {json.dumps(got)[:300]}")
        for i, (w, g) in enumerate(zip(want, got)):
            diff(w, g, f"{path}[{i}]", out)
    elif isinstance(want, float) or isinstance(got, float):
        if not (isinstance(want, (int, float)) and isinstance(got, (int, float)) and float(want) == float(got)):
            out.append(f"{path}: expected {want!r}, found {got!r}")
    elif want != got:
        out.append(f"{path}: expected {want!r}, found {got!r}")


def main():
    mode, target, dump_path = sys.argv[1:4]
    if mode == "export":
        work = os.path.dirname(os.path.abspath(target))
        for name, ds in [("images", build_images(work)), ("video", build_video(work))]:
            ds.export(export_dir=os.path.join(target, name), dataset_type=fo.types.FiftyOneDataset,
                      export_media=name == "images")
            with open(os.path.join(os.path.dirname(dump_path), f"{name}-{os.path.basename(dump_path)}"), "w") as f:
                json.dump(dump(fo.Dataset.from_dir(os.path.join(target, name), fo.types.FiftyOneDataset)), f)
        print("exported", target)
    elif mode == "verify":
        with open(dump_path) as f:
            want = json.load(f)
        ds = fo.Dataset.from_dir(target, fo.types.FiftyOneDataset)
        got = json.loads(json.dumps(dump(ds)))
        problems = []
        diff(want, got, "dataset", problems)
        if problems:
            print(f"FiftyOne read {target} differently from what was expected ({len(problems)} differences):")
            for p in problems:
                print("  " + p)
            sys.exit(1)
        print(f"verified {len(got['samples'])} samples of {target}: identical to the expected dump")
    elif mode == "runs":
        ds = fo.Dataset.from_dir(target, fo.types.FiftyOneDataset)
        runs = {}
        for key in ds.list_annotation_runs():
            info = ds.get_annotation_info(key)
            runs[key] = {
                "key": info.key,
                "method": info.config.method,
                "cls": type(info.config).__module__ + "." + type(info.config).__name__,
                "label_schema": info.config.label_schema,
                "url": getattr(info.config, "url", None),
                "view": sorted(str(i) for i in ds.load_annotation_view(key).values("id")),
            }
        with open(dump_path, "w") as f:
            json.dump({"samples": len(ds), "runs": runs}, f)
    elif mode == "dump":
        with open(dump_path, "w") as f:
            json.dump(dump(fo.Dataset.from_dir(target, fo.types.FiftyOneDataset)), f)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
