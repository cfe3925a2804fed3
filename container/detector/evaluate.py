"""Processing step: test-split mAP@0.5 (VOC07) of the trained model, with per-class AP, precision and recall,
beside the same figures for the approved model it would replace (the champion).

    python3 -m detector.evaluate [--score-threshold-floor 0.1] [--score-threshold T]
        [--model-package-group=G | --champion-model=s3://.../model.tar.gz --champion-version=N
         --champion-manifest=s3://.../manifest.jsonl] [--min-improvement M]
        [--manifest-uri s3://.../Preprocess/report/manifest.jsonl]

Reads `/opt/ml/processing/input/model/model.tar.gz` (extracted safely: members that escape the folder, links and
devices are refused) and the test `.rec` in `/opt/ml/processing/input/test`; runs the test images at the data
shape the model was trained at; writes `evaluation.json` (`metrics.map.value` is what the pipeline's condition
and the model package's ModelMetrics read) and `predictions.png` to `/opt/ml/processing/output/evaluation`.

Precision, recall and the picture count the detections at or above the model's own score threshold (chosen on
the validation split by training, in its metadata), raised to `--score-threshold-floor`; 0.5 for a model that has
none. `--score-threshold` overrides it. evaluation.json says which it used and why (`score_threshold_source`).
mAP (`metrics.map.value`, the gate and the comparison with the champion) is measured with every model's NMS at
GluonCV's 0.45, so that models are judged alike whatever operating point each chose (detector.scoring); precision,
recall and the picture count at the NMS threshold baked into the model's symbol (chosen with the score threshold by
training), which it serves with; evaluation.json names it (`nms_threshold`, `nms_threshold_source`: GluonCV's 0.45
for a model whose metadata names none) and the mAP at it (`map_at_model_nms`).

The champion (an S3 URI or a path; empty: none) is scored on the same test images with the same metric, at its
own training shape and its own threshold, and reported under `champion`, with the difference under `comparison`.
A champion that cannot be fetched or read never fails the job: it is reported absent, with the reason.
`comparison.required_map` is the mAP the new model must reach to beat it by `--min-improvement` (0 without a
champion or a margin): the pipeline's condition reads it when the config sets `model_registry.min_improvement`.

With `--manifest-uri` (the run's manifest in S3), evaluation.json's `dataset` names the data the model learned from
(detector.run_dataset, from the run's dataset report and manifest in `/opt/ml/processing/input/dataset`): the
as-of time, the manifest's URI and sha256 and the images per split; Register copies the first three into the model
package's metadata.

`data_changes` says what changed in the data since the champion: the run's manifest
(`/opt/ml/processing/input/dataset/manifest.jsonl`, Preprocess's) against the champion's (its model package's
`DataManifest` metadata), per split and in total (detector.data_changes); or, under `absent`, why not (no
champion, a champion registered without a manifest, a manifest that cannot be read or whose sha256 is not the
`DataManifestSha256` its package names): that never fails the job.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector import jobs, paths

jobs.cpu_threads()  # before mxnet is imported

import numpy as np  # noqa: E402

from detector import plots, run_dataset  # noqa: E402
from detector.champion import Champion, champion_entry, comparison, data_changes_since, registry_champion  # noqa: E402
from detector.manifest import MANIFEST_FILE  # noqa: E402
from detector.matching import IOU  # noqa: E402
from detector.scoring import Counting, Scores, load_model, model_folder, read_test_split, score  # noqa: E402

log = logging.getLogger("detector.evaluate")

EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.png"
CURVES_FILE = "training_curves.png"  # the model's, copied beside the predictions: both pictures in one place


@dataclass(frozen=True)
class Options:
    counting: Counting
    model: Path
    test: Path
    output: Path
    # named on the command line: its archive (s3://bucket/key or a path), version and data manifest
    champion: Champion = field(default_factory=Champion)
    min_improvement: float | None = None
    # the group whose newest Approved version is the champion, read from the registry by the job itself (what the
    # pipeline passes: no run parameter can name another champion or none)
    model_package_group: str | None = None
    # the run's manifest in S3, and the folder holding it and the dataset report (Preprocess's report output): its
    # manifest is also compared with the champion's
    manifest_uri: str | None = None
    dataset: Path = Path("dataset")


def the_champion(options: Options) -> Champion:
    """The registry's, when the job is given the group (what the pipeline does); else the one named, if any."""
    if not options.model_package_group:
        return options.champion
    found = registry_champion(options.model_package_group)
    jobs.event(
        log, "champion from the registry", group=options.model_package_group, version=found.version,
        manifest=found.manifest,
    )  # fmt: skip
    return found


MODEL_KEYS = (
    "backbone", "best_epoch", "best_val_map", "weights", "epochs", "score_threshold",
    "train_images", "validation_images", "training_seconds",
)  # fmt: skip


def evaluate(options: Options) -> dict[str, Any]:
    # read first: a run whose dataset cannot be named fails before the scoring, not after it
    dataset = run_dataset.section(options.dataset, options.manifest_uri) if options.manifest_uri else None
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        nets, meta = load_model(options.model, folder / "model")
        test_set = read_test_split(options.test)
        options.output.mkdir(parents=True, exist_ok=True)
        curves = model_folder(folder / "model") / CURVES_FILE
        if curves.is_file():
            shutil.copyfile(curves, options.output / CURVES_FILE)
        scores = score(nets, meta, test_set, counting=options.counting)
        found = the_champion(options)
        champion = champion_entry(
            test_set,
            options.counting,
            location=found.model,
            version=found.version,
            classes=tuple(meta["classes"]),
            folder=folder,
        )
    report: dict[str, Any] = {
        "metrics": {"map": {"value": scores.map, "standard_deviation": "NaN"}},
        "per_class": scores.per_class,
        "precision": scores.precision,
        "recall": scores.recall,
        "counts": {"images": scores.images, "boxes": scores.boxes, "detections": scores.detections},
        "iou_threshold": IOU,
        "score_threshold": scores.threshold,
        "score_threshold_source": scores.source,
        "nms_threshold": scores.nms_threshold,
        "nms_threshold_source": scores.nms_source,
        "map_at_model_nms": scores.map_at_model_nms,
        "data_shape": {"width": scores.width, "height": scores.height},
        "model": {key: meta.get(key) for key in MODEL_KEYS},
        "champion": champion,
        "comparison": comparison(scores.map, champion, options.min_improvement),
        "data_changes": data_changes_since(found, options.dataset / MANIFEST_FILE),
    }
    if dataset is not None:
        report["dataset"] = dataset
    (options.output / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _draw(test_set, scores, options.output / PREDICTIONS_FILE)
    jobs.event(log, "evaluated", map=scores.map, images=scores.images, boxes=scores.boxes)
    return report


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
    parser.add_argument("--champion-manifest", default="", help="its data manifest (s3:// or a path; empty: none)")
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
        counting=Counting(
            score_threshold=args.score_threshold,
            score_threshold_floor=args.score_threshold_floor,
            grid=max(0, args.grid),
            batch_size=max(1, args.batch_size),
        ),
        model=args.model or paths.processing_input("model") / "model.tar.gz",
        test=args.test or paths.processing_input("test"),
        output=args.output or paths.processing_output("evaluation"),
        champion=Champion(args.champion_model or None, args.champion_version or None, args.champion_manifest or None),
        min_improvement=args.min_improvement,
        model_package_group=args.model_package_group or None,
        manifest_uri=args.manifest_uri or None,
        dataset=args.dataset or paths.processing_input("dataset"),
    )


def main(argv: list[str] | None = None) -> None:
    jobs.run(lambda: evaluate(parse_args(argv)), jobs.processing_failure)


if __name__ == "__main__":
    main()
