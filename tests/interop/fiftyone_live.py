"""Real FiftyOne 1.22.1 on the test's MongoDB (FIFTYONE_DATABASE_URI / _NAME set by the test).

    create NAME FIXTURE_DIR      import a FiftyOneDataset directory as a persistent dataset
    dump NAME                    a fresh process's view: every sample (relaxed Extended JSON,
                                 as FiftyOne loads it) and the declared sample fields; for a
                                 video dataset also every frame and the frame fields
    edit NAME SAMPLE LABEL TEXT  set the `label` of ground_truth label LABEL of SAMPLE, as a
                                 FiftyOne user does (sample.save()), and tag the sample `edited`
    tag NAME SAMPLE TAG          add a tag to a sample (sample.save())
    frame NAME SAMPLE N TEXT     set the `weather` label of frame N of video SAMPLE
                                 (sample.save(), as a FiftyOne user does)
    register NAME KEY            register an annotation run of FiftyOne's own (a Label
                                 Studio config, as `annotate()` saves it before uploading)
    runs NAME                    the dataset's annotation runs as FiftyOne shows them: per
                                 key its config, the ids of its view, and what
                                 load_annotation_results answers
    varied NAME N                a dataset of N image samples whose tags, ints (with ties),
                                 floats (some None), strings and detections (confidence
                                 None, 0.4 or NaN) vary
    views NAME VIEWS_JSON        per view (a list of annoform view stages FiftyOne has, in
                                 manifest form) `len(view)` and `view.values("id")`
"""

import json
import sys

import fiftyone as fo
from bson import json_util


def create(name, fixture):
    ds = fo.Dataset.from_dir(
        dataset_dir=fixture,
        dataset_type=fo.types.FiftyOneDataset,
        name=name,
        persistent=True,
    )
    print(json.dumps({"id": str(ds._doc.id), "samples": len(ds)}))


def dump(name):
    ds = fo.load_dataset(name)
    samples = [s.to_mongo_dict(include_id=True) for s in ds]
    schema = {}
    for field, f in ds.get_field_schema().items():
        doc_type = getattr(f, "document_type", None)
        schema[field] = type(f).__name__ + (
            "(%s)" % doc_type.__name__ if doc_type else ""
        )
    out = {
        "samples": samples,
        "schema": schema,
        "annotation_runs": ds.list_annotation_runs(),
    }
    if ds.media_type == "video":
        out["frames"] = {
            s.id: {
                str(n): f.to_mongo_dict(include_id=True)
                for n, f in s.frames.items()
            }
            for s in ds
        }
        out["frame_schema"] = {
            field: type(f).__name__
            + (
                "(%s)" % f.document_type.__name__
                if getattr(f, "document_type", None)
                else ""
            )
            for field, f in ds.get_frame_field_schema().items()
        }
    print(json_util.dumps(out, json_options=json_util.RELAXED_JSON_OPTIONS))


def edit(name, sample_id, label_id, text):
    ds = fo.load_dataset(name)
    sample = ds[sample_id]
    for det in sample.ground_truth.detections:
        if det.id == label_id:
            det.label = text
            break
    else:
        raise SystemExit("no label %s on sample %s" % (label_id, sample_id))
    sample.tags.append("edited")
    sample.save()


def tag(name, sample_id, tag_):
    ds = fo.load_dataset(name)
    sample = ds[sample_id]
    sample.tags.append(tag_)
    sample.save()


def frame(name, sample_id, number, text):
    ds = fo.load_dataset(name)
    sample = ds[sample_id]
    sample.frames[int(number)]["weather"] = fo.Classification(label=text)
    sample.save()


def register(name, key):
    import fiftyone.utils.labelstudio as foul

    ds = fo.load_dataset(name)
    config = foul.LabelStudioBackendConfig(
        name="labelstudio",
        label_schema={"ground_truth": {"type": "detections", "classes": ["cat"]}},
        url="http://127.0.0.1:9",
    )
    config.build().register_run(ds.limit(1), key)


def runs(name):
    ds = fo.load_dataset(name)
    out = {"samples": len(ds), "runs": {}}
    for key in ds.list_annotation_runs():
        info = ds.get_annotation_info(key)
        try:
            results = ds.load_annotation_results(key)
            results = None if results is None else type(results).__name__
        except Exception as e:  # FiftyOne's own error is the answer
            results = "%s: %s" % (type(e).__name__, e)
        out["runs"][key] = {
            "config": info.config.serialize(),
            "view": sorted(ds.load_annotation_view(key).values("id")),
            "results": results,
        }
    print(json_util.dumps(out, json_options=json_util.RELAXED_JSON_OPTIONS))


def varied(name, n):
    ds = fo.Dataset(name, persistent=True)
    samples = []
    for i in range(int(n)):
        tags = [t for t, on in (("a", i % 3 == 0), ("b", i % 3 == 1), ("c", i % 5 == 0)) if on]
        s = fo.Sample(filepath=f"/data/img{i:02}.png", tags=tags, n=i % 4)
        s["score"] = None if i % 6 == 0 else (i * 37 % 11) / 10
        s["name"] = f"s{(i * 7) % int(n):02}"
        if i % 5 != 1:
            s["gt"] = fo.Detections(
                detections=[
                    fo.Detection(
                        label=("car", "bus")[j % 2],
                        bounding_box=[0.1, 0.1, 0.2, 0.2],
                        confidence=(None, 0.4, float("nan"))[j],
                        tags=["x"] if j == 1 else [],
                    )
                    for j in range(i % 4)
                ]
            )
        samples.append(s)
    ds.add_samples(samples)
    print(json.dumps({"ids": ds.values("id")}))


def _stage(view, stage):
    (kind, arg), = stage.items()
    if kind == "match_tags":
        if isinstance(arg, dict):
            return view.match_tags(
                arg["tags"], bool=arg.get("bool", True), all=arg.get("all", False)
            )
        return view.match_tags(arg)
    if kind == "exists":
        if isinstance(arg, dict):
            return view.exists(arg["field"], bool=arg.get("bool", True))
        return view.exists(arg)
    if kind == "select":
        return view.select(arg, ordered=True)
    if kind == "sort_by":
        if isinstance(arg, str):
            return view.sort_by(arg)
        return view.sort_by(arg["expr"], reverse=arg.get("reverse", False))
    if kind == "skip":
        return view.skip(arg)
    if kind == "limit":
        return view.limit(arg)
    raise ValueError(f"no FiftyOne stage for {stage}")


def views(name, views_json):
    ds = fo.load_dataset(name)
    out = []
    for stages in json.loads(views_json):
        view = ds.view()
        for stage in stages:
            view = _stage(view, stage)
        out.append({"len": len(view), "ids": view.values("id")})
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {
        "create": create,
        "dump": dump,
        "edit": edit,
        "tag": tag,
        "frame": frame,
        "register": register,
        "runs": runs,
        "varied": varied,
        "views": views,
    }[cmd](*args)
