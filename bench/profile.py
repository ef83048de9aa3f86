"""Where annoform's time goes against Label Studio: runs annoform's path (create, annotate,
merge plan, merge, no-op re-plans, destroy) through the timing proxy (bench/proxy.py) and
splits each command's wall time into time the server was answering (the union of the
intervals of its in-flight requests) and time spent in annoform itself, with the requests
per endpoint. Started by bench/profile.sh.

Annotating: `--annotate simulate` uses the benchmark's simulated annotators (one REST POST
per edited task, slow); `--annotate bulk` turns the predictions of every EDIT_EVERY-th task
into annotations server-side (`predictions_to_annotations`), which is how the 10k-task run
gets annotated in minutes.
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

import common
from driver import DATASET, KEY, PROJECT, run as run_cmd

HERE = os.path.dirname(os.path.abspath(__file__))


def endpoint(method, path):
    """`GET /api/tasks [all fields]`-style names: ids and queries folded away."""
    base, _, query = path.partition("?")
    base = re.sub(r"/\d+", "/{id}", base.rstrip("/"))
    tags = []
    if "fields=all" in query:
        tags.append("fields=all")
    if "query=" in query and "annoform_batch" in query:
        tags.append("batch filter")
    if "commit_to_project=false" in query:
        tags.append("files")
    return f"{method} {base}" + (f" [{', '.join(tags)}]" if tags else "")


def union(intervals):
    total, end = 0.0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tree_cpu(pid):
    """CPU seconds (user + sys) of process `pid` and its descendants so far, or None."""
    if pid is None:
        return None
    parent, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        ticks[int(d)] = int(fields[11]) + int(fields[12])
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        grew = bool(more)
        tree |= more
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def breakdown(name, t0, t1, log, rss, cpu=None):
    reqs = [r for r in log if t0 <= r["start"] <= t1]
    busy = union([(r["start"], r["start"] + r["secs"]) for r in reqs])
    wall = t1 - t0
    print(f"\n{name}: wall {wall:.2f} s = server {busy:.2f} s (requests in flight) + annoform "
          f"{wall - busy:.2f} s; {len(reqs)} requests; peak RSS {rss:.0f} MB")
    if cpu:
        server = "?" if cpu["server"] is None else f"{cpu['server']:.2f} s"
        print(f"  CPU: server {server}, annoform {cpu['annoform']:.2f} s (user + sys); "
              f"load average {os.getloadavg()[0]:.2f}")
    by = {}
    for r in reqs:
        k = endpoint(r["method"], r["path"])
        d = by.setdefault(k, {"n": 0, "secs": [], "bytes": 0})
        d["n"] += 1
        d["secs"].append(r["secs"])
        d["bytes"] += r["resp_bytes"] + r["req_bytes"]
    for k, d in sorted(by.items(), key=lambda kv: -sum(kv[1]["secs"])):
        print(f"  {d['n']:>5} × {k:<58} sum {sum(d['secs']):7.2f} s  median "
              f"{statistics.median(d['secs']):6.3f} s  max {max(d['secs']):6.3f} s  "
              f"{d['bytes'] / 1e6:7.1f} MB")
    return {"wall": wall, "server": busy, "client": wall - busy, "requests": len(reqs),
            "peak_rss_mb": rss, "cpu": cpu, "load": os.getloadavg()[0],
            "endpoints": {k: {"n": d["n"], "secs": sum(d["secs"]), "bytes": d["bytes"]}
                          for k, d in by.items()}}


def bulk_annotate(url, token, project_id):
    """Annotations made server-side from the predictions of every EDIT_EVERY-th task."""
    s = common.session(token)
    tasks = []
    page = 1
    while True:
        r = s.get(f"{url}/api/tasks", params={"project": project_id, "page": page,
                                              "page_size": 1000, "include": "id"})
        if r.status_code == 404:
            break
        r.raise_for_status()
        v = r.json()
        tasks += [t["id"] for t in v["tasks"]]
        if len(tasks) >= v["total"] or not v["tasks"]:
            break
        page += 1
    ids = sorted(tasks)[::common.EDIT_EVERY]
    for i in range(0, len(ids), 1000):
        r = s.post(f"{url}/api/dm/actions", params={"id": "predictions_to_annotations",
                                                    "project": project_id},
                   json={"selectedItems": {"all": False, "included": ids[i:i + 1000]}})
        r.raise_for_status()
    return len(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--annoform", required=True)
    ap.add_argument("--url", required=True, help="Label Studio (the proxy goes in front)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--annotate", choices=["simulate", "bulk"], default="simulate")
    ap.add_argument("--noop-repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the run (no destroy)")
    ap.add_argument("--local-files", metavar="ROOT",
                    help="the server's local-files document root: the workspace goes under it "
                         "and annoform serves media from disk instead of uploading them")
    ap.add_argument("--out", required=True)
    ap.add_argument("--server-pid", type=int,
                    help="Label Studio's process: its CPU time per command is reported")
    ap.add_argument("--only-merge", action="store_true",
                    help="no no-op plans after the merge")
    a = ap.parse_args()
    token = os.environ["LS_TOKEN"]
    os.makedirs(a.work, exist_ok=True)
    dataset = os.path.join(a.work, f"data-n{a.n}")
    if not os.path.exists(os.path.join(dataset, "samples.json")):
        env = dict(os.environ, PYTHONPATH=HERE, FIFTYONE_DO_NOT_TRACK="true",
                   HOME=os.path.join(a.work, "fo-home"),
                   FIFTYONE_DATABASE_DIR=os.path.join(a.work, "fo-db"))
        t = time.perf_counter()
        run_cmd([sys.executable, os.path.join(HERE, "gen.py"), dataset, str(a.n)], env,
                os.path.join(a.work, "gen.log"))
        print(f"generated {a.n} images in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    log_path = os.path.join(a.work, f"proxy-n{a.n}.jsonl")
    open(log_path, "w").close()
    proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "proxy.py"), a.url, log_path],
                             stdout=subprocess.PIPE, text=True)
    try:
        purl = proxy.stdout.readline().strip()
        ws = os.path.join(a.local_files or a.work, f"profile-n{a.n}")
        shutil.rmtree(ws, ignore_errors=True)
        os.makedirs(os.path.join(ws, "home"))
        os.makedirs(os.path.join(ws, "manifests"))
        shutil.copytree(dataset, os.path.join(ws, "dataset"))
        with open(os.path.join(ws, "annoform.toml"), "w") as f:
            f.write(f'default_backend = "labelstudio"\n[datasets.{DATASET}]\npath = "dataset"\n'
                    f'[backends.labelstudio]\nurl = "{purl}"\napi_key = "${{env:LS_KEY}}"\n')
            if a.local_files:
                f.write(f'local_files_root = "{os.path.abspath(a.local_files)}"\n')
        with open(os.path.join(ws, "manifests", "run.yaml"), "w") as f:
            f.write(f"apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {KEY}\n"
                    f"dataset: {DATASET}\nbackend: labelstudio\nload:\n  when: always\n"
                    f"label_schema:\n  {common.FIELD}: {{type: detections, "
                    f"classes: [{', '.join(common.CLASSES)}]}}\n")
        env = {"HOME": os.path.join(ws, "home"), "PATH": os.environ.get("PATH", ""),
               "NO_COLOR": "1", "LS_KEY": token}
        cmdlog = os.path.join(a.work, f"profile-n{a.n}.log")
        report = {"n": a.n}

        def step(name, args, expect=(0,)):
            s0, c0 = tree_cpu(a.server_pid), children_cpu()
            t0 = time.time()
            _, rss, _, _ = run_cmd([a.annoform, "-C", ws] + args, env, cmdlog, expect)
            t1 = time.time()
            s1, c1 = tree_cpu(a.server_pid), children_cpu()
            cpu = {"server": None if s0 is None else s1 - s0, "annoform": c1 - c0}
            time.sleep(0.2)  # let the proxy flush its last line
            report[name] = breakdown(name, t0, t1, read_log(log_path), rss, cpu)

        media = "local files" if a.local_files else "uploads"
        print(f"annoform against Label Studio through a timing proxy, N={a.n}, {media}")
        step("create", ["apply", "--auto-approve"])
        pid = common.project_id_by_title(common.session(token), a.url, PROJECT)
        t = time.perf_counter()
        if a.annotate == "bulk":
            k = bulk_annotate(a.url, token, pid)
        else:
            k = common.simulate(a.url, token, pid, dataset)[0]["edited_tasks"]
        print(f"\n(annotated {k} tasks in {time.perf_counter() - t:.1f} s, not through the proxy)")
        step("merge plan", ["plan", "--detailed-exitcode"], expect=(2,) if a.annotate == "simulate" else (0, 2))
        step("merge apply", ["apply", "--auto-approve"])
        for i in range(0 if a.only_merge else a.noop_repeats):
            step(f"no-op plan #{i + 1}", ["plan", "--detailed-exitcode"], expect=(0,))
        if not a.keep:
            step("destroy", ["destroy", "--auto-approve"])
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)
    finally:
        proxy.terminate()
        proxy.wait()


if __name__ == "__main__":
    main()
