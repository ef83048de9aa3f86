"""Real FiftyOne 1.22.1 on the test's MongoDB (FIFTYONE_DATABASE_URI / _NAME set by the test).

    create NAME FIXTURE_DIR      import a FiftyOneDataset directory as a persistent dataset
    dump NAME                    a fresh process's view: every sample (relaxed Extended JSON,
                                 as FiftyOne loads it) and the declared sample fields
    edit NAME SAMPLE LABEL TEXT  set the `label` of ground_truth label LABEL of SAMPLE, as a
                                 FiftyOne user does (sample.save()), and tag the sample `edited`
    tag NAME SAMPLE TAG          add a tag to a sample (sample.save())
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
    runs = ds.list_annotation_runs()
    print(
        json_util.dumps(
            {"samples": samples, "schema": schema, "annotation_runs": runs},
            json_options=json_util.RELAXED_JSON_OPTIONS,
        )
    )


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


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"create": create, "dump": dump, "edit": edit, "tag": tag}[cmd](*args)
