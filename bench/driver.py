"""Runs FiftyOne's and annoform's annotation paths side by side against one Label Studio and
prints the comparison table. Started by bench/run.sh (which installs things and starts the
server); see README "Benchmarks".

Per N and repeat, the two sides run one after the other, in alternating order, on copies of
the same generated dataset, with the same simulated annotators (common.simulate). Each
side's phases are timed with a monotonic clock around the call (FiftyOne) or the process
(annoform); peak RSS is the measured process's own, from GNU time (`run`).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import common

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "bench"
DATASET = "bench"
PROJECT = f"annoform/{DATASET}/{KEY}"


# GNU time reports the peak RSS of the command alone. The driver's own wait4 rusage cannot:
# Linux carries a parent's high-water RSS into a child across its exec (the vfork'd child
# execs from the parent's memory), so every child of this Python process would report at
# least the driver's own RSS (30-50 MB here, more than annoform needs).
GNU_TIME = "/usr/bin/time"


def run(cmd, env, log, expect=(0,)):
    """Runs `cmd`; returns (seconds, peak RSS MB, exit code, stdout). stderr goes to `log`."""
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"bench: {GNU_TIME} (GNU time, Debian package `time`) is needed to measure "
                 "each command's own peak RSS")
    with open(log, "ab") as err, tempfile.NamedTemporaryFile("r") as rss:
        err.write(f"$ {' '.join(cmd)}\n".encode())
        err.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", rss.name] + cmd, env=env,
                             stdout=subprocess.PIPE, stderr=err)
        out = p.stdout.read()
        p.wait()
        secs = time.perf_counter() - t0
        peak_kb = int(rss.read().split()[-1])
    if p.returncode not in expect:
        sys.stderr.write(out.decode(errors="replace")[-3000:])
        raise RuntimeError(f"{cmd} exited {p.returncode} (expected {expect}); see {log}")
    return secs, peak_kb / 1024, p.returncode, out


def fiftyone_run(a, n, dataset, workdir):
    env = dict(os.environ)
    for k in list(env):
        # FiftyOne would switch to local-files storage when these are set.
        if k.startswith("LABEL_STUDIO_"):
            del env[k]
    env.update(HOME=os.path.join(workdir, "fo-home"), FIFTYONE_DO_NOT_TRACK="true",
               FIFTYONE_DATABASE_DIR=os.path.join(workdir, "fo-db"), LS_TOKEN=a.token,
               PYTHONPATH=HERE)
    os.makedirs(env["HOME"], exist_ok=True)
    report = os.path.join(workdir, "fo-report.json")
    secs, rss, _, out = run([sys.executable, os.path.join(HERE, "fo_side.py"), dataset,
                             "--url", a.url, "--out", report], env,
                            os.path.join(workdir, "fiftyone.log"))
    with open(report) as f:
        r = json.load(f)
    r["peak_rss_mb"] = rss
    r["process_s"] = secs
    return r


def annoform_run(a, n, dataset, workdir):
    ws = os.path.join(workdir, f"af-n{n}")
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(os.path.join(ws, "home"))
    os.makedirs(os.path.join(ws, "manifests"))
    shutil.copytree(dataset, os.path.join(ws, "dataset"))
    with open(os.path.join(ws, "annoform.toml"), "w") as f:
        f.write(f'default_backend = "labelstudio"\n[datasets.{DATASET}]\npath = "dataset"\n'
                f'[backends.labelstudio]\nurl = "{a.url}"\napi_key = "${{env:LS_KEY}}"\n')
    with open(os.path.join(ws, "manifests", "run.yaml"), "w") as f:
        f.write(f"apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {KEY}\n"
                f"dataset: {DATASET}\nbackend: labelstudio\nload:\n  when: always\n"
                f"label_schema:\n  {common.FIELD}: {{type: detections, "
                f"classes: [{', '.join(common.CLASSES)}]}}\n")
    env = {"HOME": os.path.join(ws, "home"), "PATH": os.environ.get("PATH", ""),
           "NO_COLOR": "1", "LS_KEY": a.token}
    log = os.path.join(workdir, "annoform.log")
    af = [a.annoform, "-C", ws]
    t, rss = {}, {}

    def step(name, args, expect=(0,)):
        secs, peak, _, out = run(af + args, env, log, expect)
        t[name] = secs
        rss[name] = peak
        return out

    step("create", ["apply", "--auto-approve"])
    s = common.session(a.token)
    expected, t["edits"] = common.simulate(a.url, a.token,
                                           common.project_id_by_title(s, a.url, PROJECT), dataset)
    step("merge_plan", ["plan", "--detailed-exitcode"], expect=(2,))
    step("merge", ["apply", "--auto-approve"])
    step("reload", ["plan", "--detailed-exitcode"], expect=(0,))
    labels = common.canonical_from_dir(os.path.join(ws, "dataset"))
    step("destroy", ["destroy", "--auto-approve"])
    try:
        common.project_id_by_title(s, a.url, PROJECT)
        raise RuntimeError("the project survived destroy")
    except LookupError:
        pass
    if a.media_root:
        # The same create with the media served from disk by Label Studio (local-files
        # storage): the dataset copied under the server's document root.
        data = os.path.join(a.media_root, f"lf-n{n}")
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(dataset, data)
        with open(os.path.join(ws, "annoform.toml"), "w") as f:
            f.write(f'default_backend = "labelstudio"\n[datasets.{DATASET}]\npath = "{data}"\n'
                    f'[backends.labelstudio]\nurl = "{a.url}"\napi_key = "${{env:LS_KEY}}"\n'
                    f'local_files_root = "{a.media_root}"\n')
        shutil.rmtree(os.path.join(ws, ".annoform"), ignore_errors=True)
        step("create_local", ["apply", "--auto-approve"])
        run(af + ["destroy", "--auto-approve"], env, log)
        shutil.rmtree(data, ignore_errors=True)
    return {"side": "annoform", "timings_s": t, "expected": expected, "labels": labels,
            "peak_rss_mb": max(rss.values()), "peak_rss_mb_by_command": rss}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit):
    if x is None:
        return "–"
    return f"{x:.0f} MB" if unit == "MB" else (f"{x:.2f} s" if x < 10 else f"{x:.1f} s")


ROWS = [
    # (label, fiftyone key, annoform key(s) summed, unit)
    ("create (FO `annotate()` / `apply`)", "create", ["create"], "s"),
    ("create, annoform with local files (FO `annotate()` / `apply`)", "create", ["create_local"],
     "s"),
    ("merge (FO `load_annotations()` / `apply`)", "merge", ["merge"], "s"),
    ("merge with a preview (`plan` + `apply`)", "merge", ["merge_plan", "merge"], "s"),
    ("no-op re-plan (FO: 2nd `load_annotations()`)", "reload", ["reload"], "s"),
    ("cleanup / destroy", "destroy", ["destroy"], "s"),
    ("peak RSS (FO: python; annoform: largest command)", "peak_rss_mb", ["peak_rss_mb"], "MB"),
]


def value(r, key):
    """A run's figure, or None where the run has no such phase."""
    return r.get(key) if key in ("peak_rss_mb", "mongod_peak_rss_mb") else r["timings_s"].get(key)


def total(r, keys):
    """The sum of a run's figures, or None when one is missing."""
    xs = [value(r, k) for k in keys]
    return None if None in xs else sum(xs)


def table(results, repeats):
    lines = ["| N | phase | FiftyOne 1.22.1 | annoform | FiftyOne / annoform |",
             "|---|---|---|---|---|"]
    for n, runs in results.items():
        fo = [r for r in runs if r["side"] == "fiftyone"]
        af = [r for r in runs if r["side"] == "annoform"]
        for label, fk, aks, unit in ROWS:
            f = median([value(r, fk) for r in fo])
            x = median([total(r, aks) for r in af])
            ratio = f"{f / x:.1f}×" if f and x else "–"
            lines.append(f"| {n} | {label} | {fmt(f, unit)} | {fmt(x, unit)} | {ratio} |")
        m = median([r.get("mongod_peak_rss_mb") for r in fo])
        lines.append(f"| {n} | mongod peak RSS (FiftyOne only) | {fmt(m, 'MB')} | – | – |")
    lines.append("")
    lines.append(f"Medians of {repeats} runs per side and N (sides alternate which goes first).")
    return "\n".join(lines)


def check(n, runs, dataset):
    """Both sides must end with the same labels (ids aside): the ones the simulated edits
    should leave, computed from the dataset alone."""
    problems = []
    want = common.expected_labels(dataset)
    for r in runs:
        bad = common.same_labels(want, r["labels"])
        if bad:
            problems.append(f"N={n}: {r['side']} run #{r['repeat']} differs from the expected "
                            f"labels on {len(bad)} samples (e.g. {sorted(bad)[:3]})")
        if r["side"] == "fiftyone" and not r["reload_labels_unchanged"]:
            problems.append(f"N={n}: FiftyOne's second load changed the labels")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--annoform", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", default="20 200 1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--media-root", default=None,
                    help="Label Studio's local-files document root: also time a create "
                         "with local files")
    a = ap.parse_args()
    a.token = os.environ["LS_TOKEN"]
    sizes = [int(x) for x in a.sizes.split()]
    os.makedirs(a.work, exist_ok=True)
    results, problems = {}, []
    for n in sizes:
        dataset = os.path.join(a.work, f"data-n{n}")
        if not os.path.exists(os.path.join(dataset, "samples.json")):
            env = dict(os.environ, PYTHONPATH=HERE, FIFTYONE_DO_NOT_TRACK="true",
                       HOME=os.path.join(a.work, "fo-home"),
                       FIFTYONE_DATABASE_DIR=os.path.join(a.work, "fo-db"))
            run([sys.executable, os.path.join(HERE, "gen.py"), dataset, str(n)], env,
                os.path.join(a.work, "gen.log"))
        results[n] = []
        for rep in range(a.repeats):
            order = [fiftyone_run, annoform_run]
            if rep % 2:
                order.reverse()
            for side in order:
                r = side(a, n, dataset, a.work)
                r["n"], r["repeat"] = n, rep
                results[n].append(r)
                t = ", ".join(f"{k} {v:.2f}s" for k, v in r["timings_s"].items())
                by = r.get("peak_rss_mb_by_command")
                by = f" ({', '.join(f'{k} {v:.0f}' for k, v in by.items())})" if by else ""
                print(f"N={n} #{rep} {r['side']}: {t}, peak RSS {r['peak_rss_mb']:.0f} MB{by}",
                      file=sys.stderr, flush=True)
                with open(a.out, "w") as f:
                    json.dump({str(k): v for k, v in results.items()}, f)
        problems += check(n, results[n], dataset)
    print(table(results, a.repeats))
    print()
    if problems:
        print("LABEL CHECK FAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("Label check: both sides ended with the same labels (ids aside) in every run, "
          "matching the simulated edits.")


if __name__ == "__main__":
    main()
