"""FiftyOne's side of `cargo bench --bench view`: imports the benchmark's dataset directory
into FiftyOne, then times each view's aggregations, `len(view)` and
`view.count("ground_truth.detections")` (medians of REPEATS runs; the import is not timed).

Usage: python view_fo.py DATASET_DIR REPEATS NAME... — prints one JSON object per view.
Run it with HOME and FIFTYONE_DATABASE_DIR pointing at a scratch directory.
"""

import json
import statistics
import sys
import time

import fiftyone as fo
from fiftyone import ViewField as F


def chain(ds):
    return (
        ds.match_tags("train")
        .exists("ground_truth")
        .filter_labels(
            "ground_truth",
            F("label").is_in(["car", "person"]) & (F("confidence") > 0.3),
            only_matches=False,
        )
        .match_labels(filter=F("confidence") > 0.5, fields="ground_truth")
        .sort_by(F("ground_truth.detections").length(), reverse=True)
        .skip(10)
        .limit(50_000)
    )


# The views of benches/view.rs, by name, written with FiftyOne's own stages.
VIEWS = {
    "match_tags": lambda ds: ds.match_tags("val"),
    "exists": lambda ds: ds.exists("uniqueness"),
    "filter_labels": lambda ds: ds.filter_labels(
        "ground_truth", (F("label") == "car") & (F("confidence") > 0.5)
    ),
    "match_labels": lambda ds: ds.match_labels(
        filter=(F("label") == "truck") & F("occluded") & (F("confidence") > 0.9),
        fields="ground_truth",
    ),
    "sort_by expr": lambda ds: ds.sort_by(
        F("ground_truth.detections").length(), reverse=True
    ),
    "sort_by field": lambda ds: ds.sort_by("uniqueness"),
    "take 10k": lambda ds: ds.take(10_000, seed=51),
    "chain of 7 stages": chain,
}


def timed(f, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    path, repeats, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    t = time.perf_counter()
    ds = fo.Dataset.from_dir(
        dataset_dir=path, dataset_type=fo.types.FiftyOneDataset, name="view-bench"
    )
    print(json.dumps({"import_s": time.perf_counter() - t, "samples": len(ds)}), flush=True)
    for name in names:
        view = VIEWS[name](ds)
        len_s, n = timed(lambda: len(view), repeats)
        count_s, labels = timed(lambda: view.count("ground_truth.detections"), repeats)
        print(json.dumps({"name": name, "len_s": len_s, "count_s": count_s,
                          "len": n, "count": labels}), flush=True)


if __name__ == "__main__":
    main()
