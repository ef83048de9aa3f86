"""FiftyOne's side of the benchmark, one run in one process (the driver measures this
process's peak RSS with wait4): import the dataset, `annotate()`, the simulated annotators,
`load_annotations()`, a second `load_annotations()`, `cleanup()`. Writes a JSON report.

    python bench/fo_side.py DATASET_DIR --url URL --out REPORT.json   (token in LS_TOKEN)
"""

import argparse
import json
import os
import time
import uuid

import fiftyone as fo

from common import CLASSES, FIELD, canonical, simulate, vmhwm_mb

KEY = "bench"


def find_mongod(db_dir):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"mongod") and db_dir.encode() in b" ".join(cmd):
            return int(p)
    return None


def snapshot(ds):
    ids, dets = ds.values(["id", f"{FIELD}.detections"])
    return canonical(
        (sid, [{"label": d.label, "bounding_box": d.bounding_box} for d in (ds_ or [])])
        for sid, ds_ in zip(ids, dets)
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True, help="where the JSON report goes")
    a = ap.parse_args()
    token = os.environ["LS_TOKEN"]
    t = {}

    t0 = time.perf_counter()
    ds = fo.Dataset.from_dir(a.dataset, fo.types.FiftyOneDataset,
                             name=f"bench-{uuid.uuid4().hex[:8]}", progress=False)
    t["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = ds.annotate(KEY, backend="labelstudio", label_field=FIELD,
                          label_type="detections", classes=CLASSES, url=a.url, api_key=token)
    t["create"] = time.perf_counter() - t0

    expected, t["edits"] = simulate(a.url, token, results.project_id, a.dataset)

    t0 = time.perf_counter()
    ds.load_annotations(KEY, url=a.url, api_key=token, unexpected="ignore")
    t["merge"] = time.perf_counter() - t0
    merged = snapshot(ds)

    # FiftyOne has no plan: the nearest thing to a no-op re-plan is loading again (which is not
    # a no-op there: labels drawn in Label Studio get new ids every time).
    before = set(ds.values(f"{FIELD}.detections.id", unwind=True))
    t0 = time.perf_counter()
    ds.load_annotations(KEY, url=a.url, api_key=token, unexpected="ignore")
    t["reload"] = time.perf_counter() - t0
    after = set(ds.values(f"{FIELD}.detections.id", unwind=True))
    reloaded_same = snapshot(ds) == merged

    t0 = time.perf_counter()
    results = ds.load_annotation_results(KEY, url=a.url, api_key=token)
    results.cleanup()
    ds.delete_annotation_run(KEY)
    t["destroy"] = time.perf_counter() - t0

    mongod = find_mongod(fo.config.database_dir)
    out = {
        "side": "fiftyone",
        "version": fo.__version__,
        "timings_s": t,
        "expected": expected,
        "labels": merged,
        "reload_labels_unchanged": reloaded_same,
        "reload_ids_changed": len(before ^ after),
        "mongod_peak_rss_mb": vmhwm_mb(mongod) if mongod else None,
    }
    ds.delete()
    with open(a.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
