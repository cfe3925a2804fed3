"""Processing step: test-split mAP@0.5 (VOC07) of the trained model, with per-class AP, precision and recall,
beside the same figures for the approved model it would replace (the champion).

    python3 -m detector.evaluate [--score-threshold-floor 0.1] [--score-threshold T]
        [--model-package-group=G | --champion-model=s3://.../model.tar.gz --champion-version=N] [--min-improvement M]
        [--manifest-uri s3://.../Preprocess/report/manifest.jsonl]

Reads `/opt/ml/processing/input/model/model.tar.gz` (extracted safely: members that escape the folder, links and
devices are refused) and the test `.rec` in `/opt/ml/processing/input/test`; runs the test images at the data
shape the model was trained at; writes `evaluation.json` (`metrics.map.value` is what the pipeline's condition
and the model package's ModelMetrics read) and `predictions.png` to `/opt/ml/processing/output/evaluation`.

Precision, recall and the picture count the detections at or above the model's own score threshold (chosen on
the validation split by training, in its metadata), raised to `--score-threshold-floor`; 0.5 for a model that has
none. `--score-threshold` overrides it. evaluation.json says which it used and why (`score_threshold_source`).

The champion (an S3 URI or a path; empty: none) is scored on the same test images with the same metric, at its
own training shape and its own threshold, and reported under `champion`, with the difference under `comparison`.
A champion that cannot be fetched or read never fails the job: it is reported absent, with the reason.
`comparison.required_map` is the mAP the new model must reach to beat it by `--min-improvement` (0 without a
champion or a margin): the pipeline's condition reads it when the config sets `model_registry.min_improvement`.

With `--manifest-uri` (the run's manifest in S3), evaluation.json's `dataset` names the data the model learned from
(detector.run_dataset, from the run's dataset report and manifest in `/opt/ml/processing/input/dataset`): the
as-of time, the manifest's URI and sha256 and the images per split; Register copies the first three into the model
package's metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from detector import jobs, paths

jobs.cpu_threads()  # before mxnet is imported

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluoncv.data.batchify import Pad, Stack, Tuple  # noqa: E402
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric  # noqa: E402
from mxnet import gluon  # noqa: E402

from detector import model, plots, run_dataset, transforms  # noqa: E402
from detector.arrays import Array  # noqa: E402
from detector.matching import IOU, matches  # noqa: E402

log = logging.getLogger("detector.evaluate")

EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.png"
CURVES_FILE = "training_curves.png"  # the model's, copied beside the predictions: both pictures in one place
CHAMPION_ARCHIVE = "champion.tar.gz"
REASON_LENGTH = 300
DEFAULT_THRESHOLD = 0.5  # for a model without a threshold of its own (trained without a validation split)


@dataclass(frozen=True)
class Options:
    score_threshold: float | None  # an override
    score_threshold_floor: float
    model: Path
    test: Path
    output: Path
    grid: int
    batch_size: int
    champion_model: str | None = None  # s3://bucket/key or a path of a model archive
    champion_version: str | None = None
    min_improvement: float | None = None
    # the group whose newest Approved version is the champion, read from the registry by the job itself (what the
    # pipeline passes: no run parameter can name another champion or none)
    model_package_group: str | None = None
    # the run's manifest in S3, and the folder holding it and the dataset report (Preprocess's report output)
    manifest_uri: str | None = None
    dataset: Path = Path("dataset")


@dataclass(frozen=True)
class Scores:
    """One model's figures on the test split, at its own shape and threshold."""

    map: float
    per_class: dict[str, dict[str, Any]]
    images: int
    boxes: int
    detections: int
    threshold: float
    source: str
    width: int
    height: int
    shown: list[tuple[int, Array]]

    @property
    def true_positives(self) -> int:
        return sum(int(entry["true_positives"]) for entry in self.per_class.values())

    @property
    def precision(self) -> float:
        return round(self.true_positives / self.detections, 6) if self.detections else 0.0

    @property
    def recall(self) -> float:
        return round(self.true_positives / self.boxes, 6) if self.boxes else 0.0


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a model archive, refusing any member that is a link or device or would land outside `destination`."""
    if not archive.is_file():
        raise jobs.JobError(f"model: {archive} not found")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                name = PurePosixPath(member.name)
                if member.issym() or member.islnk():
                    raise jobs.JobError(f"model archive: member {member.name!r} is a link; refused")
                if not (member.isfile() or member.isdir()):
                    raise jobs.JobError(f"model archive: member {member.name!r} is not a regular file; refused")
                target = (destination / name).resolve()
                if name.is_absolute() or ".." in name.parts or not target.is_relative_to(destination.resolve()):
                    raise jobs.JobError(f"model archive: member {member.name!r} escapes the extraction folder; refused")
            tar.extractall(destination, members=members, filter="data")
    except tarfile.TarError as error:
        raise jobs.JobError(f"model archive {archive.name}: not a readable tar file ({error})") from None


def model_folder(extracted: Path) -> Path:
    """The folder of model-meta.json: the archive root, or the one folder it holds."""
    found = sorted(extracted.rglob(model.META_FILE))
    return found[0].parent if found else extracted


def load_model(archive: Path, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The exported network in a model archive, and its metadata."""
    safe_extract(archive, folder)
    found = model_folder(folder)
    return model.load_exported(found)


def read_test_split(folder: Path) -> Any:
    test_rec = model.find_rec(folder, "test input")
    if test_rec is None:
        raise jobs.JobError(f"test input: no .rec file in {folder}")
    test_set = model.records(test_rec)
    if len(test_set) == 0:
        raise jobs.JobError("test split is empty: nothing to evaluate")
    return test_set


def score(net: Any, meta: dict[str, Any], test_set: Any, *, options: Options) -> Scores:
    """mAP@0.5 (VOC07) over the test split, and precision and recall at the model's threshold."""
    classes = tuple(meta["classes"])
    width, height = int(meta["data_width"]), int(meta["data_height"])
    threshold, source = score_threshold(options, meta.get("score_threshold"))
    net.hybridize(static_alloc=True, static_shape=True)
    loader = gluon.data.DataLoader(
        test_set.transform(transforms.val_transform(width, height)),
        options.batch_size,
        shuffle=False,
        batchify_fn=Tuple(Stack(), Pad(pad_val=-1)),
        last_batch="keep",
    )
    metric = VOC07MApMetric(iou_thresh=IOU, class_names=list(classes))
    counts = {name: {"true_positives": 0, "false_positives": 0, "false_negatives": 0, "boxes": 0} for name in classes}
    shown: list[tuple[int, Array]] = []
    index = 0
    for data, label in loader:
        ids, scores, boxes = net(data.as_in_context(mx.cpu()))
        boxes = model.clip_boxes(boxes, width, height)
        metric.update(
            boxes, ids, scores, label.slice_axis(axis=-1, begin=0, end=4), label.slice_axis(axis=-1, begin=4, end=5)
        )
        for ids_i, scores_i, boxes_i, label_i in zip(
            ids.asnumpy(), scores.asnumpy(), boxes.asnumpy(), label.asnumpy(), strict=True
        ):
            keep = (ids_i[:, 0] >= 0) & (scores_i[:, 0] >= threshold)
            found = np.hstack([boxes_i[keep], scores_i[keep]])
            found_ids = ids_i[keep, 0]
            for class_id, name in enumerate(classes):
                truths = label_i[label_i[:, 4] == class_id, :4]
                hit, false, missed = matches(found[found_ids == class_id], truths)
                entry = counts[name]
                entry["true_positives"] += hit
                entry["false_positives"] += false
                entry["false_negatives"] += missed
                entry["boxes"] += len(truths)
            if len(shown) < options.grid:
                shown.append((index, found))
            index += 1

    names, values = metric.get()
    average_precision = {name: _number(value) for name, value in zip(names[:-1], values[:-1], strict=True)}
    per_class = {}
    for name in classes:
        entry = counts[name]
        detected = entry["true_positives"] + entry["false_positives"]
        per_class[name] = {
            "ap": average_precision.get(name, 0.0),
            "precision": entry["true_positives"] / detected if detected else 0.0,
            "recall": entry["true_positives"] / entry["boxes"] if entry["boxes"] else 0.0,
            **entry,
        }
    return Scores(
        map=_number(values[-1]),
        per_class=per_class,
        images=len(test_set),
        boxes=sum(entry["boxes"] for entry in counts.values()),
        detections=sum(entry["true_positives"] + entry["false_positives"] for entry in counts.values()),
        threshold=threshold,
        source=source,
        width=width,
        height=height,
        shown=shown,
    )


def fetch_champion(location: str, destination: Path) -> Path:
    """The champion's archive: downloaded from S3, or a local path."""
    if not location.startswith("s3://"):
        return Path(location)
    import boto3

    parsed = urlparse(location)
    boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(destination))
    return destination


def registry_champion(group: str) -> tuple[str | None, str | None]:
    """The group's newest Approved version (its archive and version), as the control plane reads it; (None, None)
    when there is none. A version approved and later rejected no longer counts."""
    import boto3

    sagemaker = boto3.client("sagemaker")
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]  # fmt: skip
    if not found:
        return None, None
    package = sagemaker.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = containers[0].get("ModelDataUrl") if containers else None
    return (str(url), str(package["ModelPackageVersion"])) if url else (None, None)


def with_registry_champion(options: Options) -> Options:
    if not options.model_package_group:
        return options
    model, version = registry_champion(options.model_package_group)
    jobs.event(log, "champion from the registry", group=options.model_package_group, version=version)
    return replace(options, champion_model=model, champion_version=version)


def champion_entry(options: Options, test_set: Any, *, classes: tuple[str, ...], folder: Path) -> dict[str, Any]:
    """The champion's figures on the same test split, or why there are none. Nothing here fails the job."""
    entry: dict[str, Any] = {"version": options.champion_version or None, "model_data_url": options.champion_model}
    if not options.champion_model:
        return {**entry, "present": False, "reason": "no approved model in the group"}
    try:
        archive = fetch_champion(options.champion_model, folder / CHAMPION_ARCHIVE)
        net, meta = load_model(archive, folder / "champion")
        if tuple(meta["classes"]) != classes:
            raise jobs.JobError(f"it detects {', '.join(meta['classes'])}, not {', '.join(classes)}")
        scores = score(net, meta, test_set, options=options)
    except Exception as error:
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:REASON_LENGTH]
        jobs.event(log, "champion absent", version=options.champion_version, reason=reason)
        return {**entry, "present": False, "reason": reason}
    jobs.event(log, "champion evaluated", version=options.champion_version, map=scores.map)
    return {
        **entry,
        "present": True,
        "map": scores.map,
        "per_class": {
            name: {key: figures[key] for key in ("ap", "precision", "recall")}
            for name, figures in scores.per_class.items()
        },
        "precision": scores.precision,
        "recall": scores.recall,
        "score_threshold": scores.threshold,
        "score_threshold_source": scores.source,
        "data_shape": {"width": scores.width, "height": scores.height},
        "model": {key: meta.get(key) for key in ("backbone", "best_epoch", "epochs")},
    }


def comparison(new_map: float, champion: dict[str, Any], min_improvement: float | None) -> dict[str, Any]:
    """The difference, the mAP the condition asks for and a line with both figures for the Fail message (every
    value present whatever happened to the champion, so that the pipeline can always read them)."""
    present = bool(champion["present"])
    champion_map = float(champion["map"]) if present else 0.0
    version = str(champion["version"]) if champion["version"] else "none"
    if not present:
        required, summary = 0.0, f"no champion: {champion['reason']}"
    elif min_improvement is None:
        required, summary = 0.0, f"champion v{version} test mAP {champion_map}"
    else:
        required = round(champion_map + min_improvement, 6)
        summary = f"champion v{version} test mAP {champion_map} + min_improvement {min_improvement} = {required}"
    return {
        "champion_version": version if present else "none",
        "champion_map": champion_map,
        "map_difference": round(new_map - champion_map, 6) if present else None,
        "min_improvement": min_improvement,
        "required_map": required,
        "summary": summary,
    }


MODEL_KEYS = (
    "backbone", "best_epoch", "best_val_map", "epochs", "score_threshold",
    "train_images", "validation_images", "training_seconds",
)  # fmt: skip


def evaluate(options: Options) -> dict[str, Any]:
    # read first: a run whose dataset cannot be named fails before the scoring, not after it
    dataset = run_dataset.section(options.dataset, options.manifest_uri) if options.manifest_uri else None
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        net, meta = load_model(options.model, folder / "model")
        test_set = read_test_split(options.test)
        options.output.mkdir(parents=True, exist_ok=True)
        curves = model_folder(folder / "model") / CURVES_FILE
        if curves.is_file():
            shutil.copyfile(curves, options.output / CURVES_FILE)
        scores = score(net, meta, test_set, options=options)
        classes = tuple(meta["classes"])
        champion = champion_entry(with_registry_champion(options), test_set, classes=classes, folder=folder)
    report: dict[str, Any] = {
        "metrics": {"map": {"value": scores.map, "standard_deviation": "NaN"}},
        "per_class": scores.per_class,
        "precision": scores.precision,
        "recall": scores.recall,
        "counts": {"images": scores.images, "boxes": scores.boxes, "detections": scores.detections},
        "iou_threshold": IOU,
        "score_threshold": scores.threshold,
        "score_threshold_source": scores.source,
        "data_shape": {"width": scores.width, "height": scores.height},
        "model": {key: meta.get(key) for key in MODEL_KEYS},
        "champion": champion,
        "comparison": comparison(scores.map, champion, options.min_improvement),
    }
    if dataset is not None:
        report["dataset"] = dataset
    (options.output / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _draw(test_set, scores, options.output / PREDICTIONS_FILE)
    jobs.event(log, "evaluated", map=scores.map, images=scores.images, boxes=scores.boxes)
    return report


def score_threshold(options: Options, chosen: float | None) -> tuple[float, str]:
    """The threshold to count with and where it comes from: the override, the model's (at least the floor), or
    the default (at least the floor)."""
    if options.score_threshold is not None:
        return options.score_threshold, "override"
    if chosen is None:
        return max(DEFAULT_THRESHOLD, options.score_threshold_floor), "default"
    if float(chosen) < options.score_threshold_floor:
        return options.score_threshold_floor, "floor"
    return float(chosen), "model"


def _number(value: float) -> float:
    """mAP of a set without boxes is undefined (NaN): reported as 0, the value no threshold accepts."""
    value = float(value)
    return 0.0 if math.isnan(value) else round(value, 6)


def _draw(test_set: Any, scores: Scores, path: Path) -> None:
    """The test images `scores` shows, with their boxes and the detections at its threshold, in their pixels."""
    width, height = scores.width, scores.height
    images, truths, predicted = [], [], []
    for index, found in scores.shown:
        image, label = test_set[index]
        rows, columns = image.shape[:2]
        scale = np.array([columns / width, rows / height, columns / width, rows / height])
        images.append(image.asnumpy())
        truths.append(label[label[:, 4] >= 0, :4])
        predicted.append(np.hstack([found[:, :4] * scale, found[:, 4:5]]) if len(found) else np.zeros((0, 5)))
    plots.predictions(images, truths, predicted, path=path)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python3 -m detector.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--score-threshold", type=float, default=None, help="override: count detections at or above it, for any model"
    )
    parser.add_argument(
        "--score-threshold-floor", type=float, default=0.1, help="the lowest threshold a model's own may give"
    )
    parser.add_argument("--model", type=Path, default=None, help="model.tar.gz (default: the job's model input)")
    parser.add_argument("--test", type=Path, default=None, help="test .rec folder (default: the job's test input)")
    parser.add_argument(
        "--output", type=Path, default=None, help="output folder (default: the job's evaluation output)"
    )
    parser.add_argument(
        "--champion-model", default="", help="the approved model's archive (s3:// or a path; empty: none)"
    )
    parser.add_argument("--champion-version", default="", help="its model package version")
    parser.add_argument(
        "--model-package-group",
        default="",
        help="read the champion from the registry: this group's newest Approved version (instead of --champion-model)",
    )
    parser.add_argument(
        "--min-improvement", type=float, default=None, help="the mAP margin over the champion required_map asks for"
    )
    parser.add_argument("--manifest-uri", default="", help="the run's manifest in S3 (evaluation.json's dataset)")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="the run's dataset report folder (default: the job's dataset input)"
    )
    parser.add_argument("--grid", type=int, default=12, help="test images drawn in predictions.png")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    for name in ("score_threshold", "score_threshold_floor"):
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.min_improvement is not None and not -1 <= args.min_improvement <= 1:
        parser.error("--min-improvement must be between -1 and 1")
    return Options(
        score_threshold=args.score_threshold,
        score_threshold_floor=args.score_threshold_floor,
        model=args.model or paths.processing_input("model") / "model.tar.gz",
        test=args.test or paths.processing_input("test"),
        output=args.output or paths.processing_output("evaluation"),
        grid=max(0, args.grid),
        batch_size=max(1, args.batch_size),
        champion_model=args.champion_model or None,
        champion_version=args.champion_version or None,
        min_improvement=args.min_improvement,
        model_package_group=args.model_package_group or None,
        manifest_uri=args.manifest_uri or None,
        dataset=args.dataset or paths.processing_input("dataset"),
    )


def main(argv: list[str] | None = None) -> None:
    jobs.run(lambda: evaluate(parse_args(argv)), jobs.processing_failure)


if __name__ == "__main__":
    main()
