"""What both sides of the benchmark share: the data's shape, the simulated annotators and
the label snapshot that proves both sides ended with the same labels."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import requests

CLASSES = ["car", "person", "bike", "truck"]
BOXES = 5
WIDTH, HEIGHT = 320, 240
FIELD = "ground_truth"
# Every EDIT_EVERY-th sample (by position in the dataset) gets an annotation.
EDIT_EVERY = int(os.environ.get("BENCH_EDIT_EVERY", "4"))


def session(token):
    s = requests.Session()
    s.headers["Authorization"] = f"Token {token}"
    return s


def project_tasks(s, url, project_id):
    """Every task of a project with predictions and annotations, page by page. Pages of 100:
    on FiftyOne's projects a page of 1000 with `fields=all` fails in Label Studio 1.23.2 on
    sqlite ("Expression tree is too large (maximum depth 1000)")."""
    out, page = [], 1
    while True:
        r = s.get(f"{url}/api/tasks", params={"project": project_id, "fields": "all",
                                              "page": page, "page_size": 100})
        if r.status_code == 404 and page > 1:
            return out
        r.raise_for_status()
        v = r.json()
        out.extend(v["tasks"])
        if len(out) >= v.get("total", 0) or not v["tasks"]:
            return out
        page += 1


def project_id_by_title(s, url, title):
    r = s.get(f"{url}/api/projects", params={"title": title, "page_size": 100})
    r.raise_for_status()
    for p in r.json()["results"]:
        if p["title"] == title:
            return p["id"]
    raise LookupError(f"no project titled {title!r}")


def label_index(dataset_dir):
    """label id -> (sample position, detection position) of the generated dataset."""
    with open(os.path.join(dataset_dir, "samples.json")) as f:
        samples = json.load(f)["samples"]
    index = {}
    for i, smp in enumerate(samples):
        for j, d in enumerate((smp.get(FIELD) or {}).get("detections", [])):
            index[d["_id"]["$oid"]] = (i, j)
    return index


def simulate(url, token, project_id, dataset_dir, workers=4):
    """The simulated annotators, identical for both sides: on every EDIT_EVERY-th sample one
    annotation, made from the uploaded prediction (whose result ids are our label ids on both
    sides), that moves box 0 by 1 % of the width, deletes box 1, relabels box 2 to the next
    class, keeps boxes 3 and 4, and draws one new box (an editor-style 10-character id).
    Returns (expected counts, seconds spent)."""
    t0 = time.perf_counter()
    s = session(token)
    index = label_index(dataset_dir)
    jobs = []
    expected = {"edited_tasks": 0, "moved": 0, "deleted": 0, "relabeled": 0, "added": 0}
    for t in project_tasks(s, url, project_id):
        result = next((p["result"] for p in t.get("predictions") or [] if p.get("result")), [])
        located = [(index[r["id"]], r) for r in result if r.get("id") in index]
        if not located:
            raise RuntimeError(f"task {t['id']}: no prediction carries a known label id")
        pos = located[0][0][0]
        if pos % EDIT_EVERY:
            continue
        out = []
        for (_, j), r in sorted(located, key=lambda x: x[0]):
            r = json.loads(json.dumps(r))
            for k in ("origin", "score", "readonly", "hidden"):
                r.pop(k, None)
            v = r["value"]
            if j == 0:
                v["x"] = min(v["x"] + 1.0, 100.0 - v["width"])
                expected["moved"] += 1
            elif j == 1:
                expected["deleted"] += 1
                continue
            elif j == 2:
                label = v["rectanglelabels"][0]
                v["rectanglelabels"] = [CLASSES[(CLASSES.index(label) + 1) % len(CLASSES)]]
                expected["relabeled"] += 1
            out.append(r)
        out.append({"id": f"bench{pos:05d}", "from_name": FIELD, "to_name": "image",
                    "type": "rectanglelabels", "original_width": WIDTH,
                    "original_height": HEIGHT, "image_rotation": 0, "origin": "manual",
                    "value": {"x": 10.0, "y": 10.0, "width": 20.0, "height": 20.0,
                              "rotation": 0, "rectanglelabels": ["bike"]}})
        expected["added"] += 1
        expected["edited_tasks"] += 1
        jobs.append((t["id"], out))

    def post(job):
        task_id, res = job
        r = s.post(f"{url}/api/tasks/{task_id}/annotations",
                   json={"result": res, "was_cancelled": False, "ground_truth": False})
        r.raise_for_status()

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(post, jobs))
    return expected, time.perf_counter() - t0


def canonical(samples):
    """sample id -> sorted [(label, x, y, w, h)] rounded to 1e-6: the labels, ids aside.
    `samples` yields (sample id, list of detection dicts with label/bounding_box)."""
    out = {}
    for sid, dets in samples:
        out[sid] = sorted(
            [d["label"]] + [round(float(c), 6) for c in d["bounding_box"]] for d in dets
        )
    return out


def canonical_from_dir(dataset_dir):
    """The labels of a FiftyOneDataset directory (annoform's side)."""
    with open(os.path.join(dataset_dir, "samples.json")) as f:
        samples = json.load(f)["samples"]
    return canonical(
        (smp["_id"]["$oid"], (smp.get(FIELD) or {}).get("detections", [])) for smp in samples
    )


def expected_labels(dataset_dir):
    """What the simulated edits should leave, computed from the dataset alone."""
    with open(os.path.join(dataset_dir, "samples.json")) as f:
        samples = json.load(f)["samples"]
    out = []
    for i, smp in enumerate(samples):
        dets = [dict(label=d["label"], bounding_box=list(d["bounding_box"]))
                for d in (smp.get(FIELD) or {}).get("detections", [])]
        if i % EDIT_EVERY == 0:
            x, _, w, _ = dets[0]["bounding_box"]
            dets[0]["bounding_box"][0] = min(x + 0.01, 1.0 - w)
            dets[2]["label"] = CLASSES[(CLASSES.index(dets[2]["label"]) + 1) % len(CLASSES)]
            del dets[1]
            dets.append(dict(label="bike", bounding_box=[0.1, 0.1, 0.2, 0.2]))
        out.append((smp["_id"]["$oid"], dets))
    return canonical(out)


def same_labels(a, b, tol=2e-6):
    """Samples on which two canonical snapshots differ (beyond float noise)."""
    def close(x, y):
        return len(x) == len(y) and all(
            p[0] == q[0] and all(abs(u - v) <= tol for u, v in zip(p[1:], q[1:]))
            for p, q in zip(x, y))
    return [k for k in set(a) | set(b) if not close(a.get(k, []), b.get(k, []))]


def vmhwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
