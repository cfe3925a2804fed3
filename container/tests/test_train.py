"""Training job: tiny runs at 96x64 on the synthetic splits."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from detector import checkpoints, hyperparameters, jobs, model, nms, trainer
from detector.arrays import Array

from .conftest import REPO, TINY_HYPERPARAMETERS, JobResult, finished_training, run_job, training_root

EPOCH_LINE = re.compile(r"^epoch=\d+ ", re.MULTILINE)


def metric_definitions() -> list[dict[str, str]]:
    """pipeline_def.metrics, the regexes the training job's definition gives SageMaker (read from its file)."""
    spec = importlib.util.spec_from_file_location("pipeline_metrics", REPO / "pipeline_def" / "metrics.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    definitions: list[dict[str, str]] = module.metric_definitions()
    return definitions


def without_speed(line: str) -> str:
    return re.sub(r" speed=[0-9.]+", "", line)


def epoch_lines(result: JobResult) -> list[str]:
    return [line for line in result.stdout.splitlines() if EPOCH_LINE.match(line)]


def test_exports_a_loadable_model_with_curves_and_meta(trained: JobResult) -> None:
    folder = trained.root / "model"
    for name in (
        "model-symbol.json",
        "model-0000.params",
        "model-meta.json",
        "training_curves.json",
        "training_curves.png",
    ):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "model-meta.json").read_text())
    assert meta["classes"] == ["scratch"]
    assert (meta["data_width"], meta["data_height"]) == (96, 64)
    curves = json.loads((folder / "training_curves.json").read_text())
    assert [entry["epoch"] for entry in curves["epochs"]] == [1, 2]
    assert meta["best_epoch"] == curves["best_epoch"]
    assert meta["best_val_map"] == max(e["val_map"] for e in curves["epochs"])
    net, _ = model.load_exported(folder)
    ids, _scores, boxes = net(mx.nd.zeros((1, 3, 64, 96)))
    assert boxes.shape == (1, model.POST_NMS, 4)  # a head for the dataset's one class, NMS baked in
    assert float(ids.max().asscalar()) <= 0


def test_the_exported_threshold_is_the_best_f1_of_the_exported_model_on_the_validation_split(
    trained: JobResult, splits: Path
) -> None:
    import mxnet as mx
    from detector import model, nms, thresholds, transforms
    from detector.validation import validation_detections
    from gluoncv.data.batchify import Pad, Stack, Tuple

    net, meta = model.load_exported(trained.root / "model")
    validation = model.records(next((splits / "processing/output/validation").glob("*.rec")))
    loader = mx.gluon.data.DataLoader(
        validation.transform(transforms.val_transform(meta["data_width"], meta["data_height"])),
        4,
        batchify_fn=Tuple(Stack(), Pad(pad_val=-1)),
    )
    images = validation_detections(net, loader, mx.cpu())
    assert sum(len(truths) for _, truths in images) > 0

    chosen = thresholds.choose(images, len(meta["classes"]))

    if chosen is None:  # a tiny model may find nothing: then it states no threshold
        assert "score_threshold" not in meta
        assert (meta["nms_threshold"], meta["nms_threshold_source"]) == (0.45, nms.NOTHING_FOUND)
    else:
        assert meta["score_threshold"] == pytest.approx(chosen.threshold, abs=1e-6)
        assert meta["validation_f1"]["f1"] == pytest.approx(chosen.f1, abs=1e-6)
        assert meta["nms_threshold_source"] == nms.CHOSEN


def test_the_chosen_nms_threshold_is_baked_into_the_exported_symbol_and_logged(trained: JobResult) -> None:
    meta = json.loads((trained.root / "model" / "model-meta.json").read_text())
    symbol = json.loads((trained.root / "model" / "model-symbol.json").read_text())
    baked = [node["attrs"]["overlap_thresh"] for node in symbol["nodes"] if node["op"] == "_contrib_box_nms"]
    assert meta["nms_threshold"] in nms.GRID
    assert [float(value) for value in baked] == [meta["nms_threshold"]]
    if meta["nms_threshold_source"] == nms.CHOSEN:
        assert f"thresholds chosen nms_threshold={meta['nms_threshold']} " in trained.stdout


def test_the_head_predicts_the_dataset_classes_not_voc(trained: JobResult) -> None:
    symbol = json.loads((trained.root / "model" / "model-symbol.json").read_text())
    filters = {node["attrs"]["num_filter"] for node in symbol["nodes"] if node["op"] == "Convolution"}
    assert "18" in filters  # 3 anchors x (4 box + 1 objectness + 1 class)
    assert "75" not in filters  # what a 20-class VOC head would have


@pytest.mark.parametrize(
    ("val_map", "best", "expected"),
    [(0.0, 0.0, True), (0.3, 0.2, True), (0.1, 0.2, False), (None, 0.2, False), (0.0, None, True), (None, None, False)],
)
def test_best_epoch_choice(val_map: float | None, best: float | None, expected: bool) -> None:
    assert checkpoints.is_better(val_map, best) is expected


def test_one_epoch_line_each_that_the_metric_regexes_read(trained: JobResult) -> None:
    lines = epoch_lines(trained)
    assert len(lines) == 2
    # no GIoU term and no weight average by default
    definitions = [d for d in metric_definitions() if d["Name"] not in ("train:box_loss", "validation:ema_map")]
    for line in lines:
        found = {d["Name"]: re.search(d["Regex"], line) for d in definitions}
        assert all(match is not None for match in found.values()), (line, found)
        assert "box_loss" not in line
        assert "ema_val_map" not in line
    values = {d["Name"]: float(re.search(d["Regex"], lines[-1]).group(1)) for d in definitions}  # type: ignore[union-attr]
    curves = json.loads((trained.root / "model" / "training_curves.json").read_text())["epochs"][-1]
    assert values["validation:map"] == round(curves["val_map"], 4)
    assert values["train:obj_loss"] == round(curves["obj_loss"], 4)


def test_resumes_from_checkpoints_after_an_interruption(trained: JobResult, splits: Path, tmp_path: Path) -> None:
    # Given the checkpoints of a job that stopped after epoch 1 (a spot interruption)
    root = training_root(tmp_path, splits, TINY_HYPERPARAMETERS)
    first = run_job("detector.train", root, env={"DETECTOR_STOP_AFTER_EPOCHS": "1"})
    assert first.returncode != 0
    assert len(epoch_lines(first)) == 1
    assert not (root / "model" / "model-symbol.json").exists()
    # When the job restarts with the same checkpoint folder
    second = run_job("detector.train", root)
    # Then it continues at epoch 2 and the curves hold both epochs
    assert second.returncode == 0, second.stderr
    assert [line.split()[0] for line in epoch_lines(second)] == ["epoch=2"]
    curves = json.loads((root / "model" / "training_curves.json").read_text())
    assert [entry["epoch"] for entry in curves["epochs"]] == [1, 2]
    # and it is the uninterrupted job: the same batches, losses and learned weights
    assert without_speed(epoch_lines(second)[0]) == without_speed(epoch_lines(trained)[1])
    resumed = mx.nd.load(str(root / "checkpoints" / "latest.params"))
    uninterrupted = mx.nd.load(str(trained.root / "checkpoints" / "latest.params"))
    assert resumed.keys() == uninterrupted.keys()
    for name, value in resumed.items():
        np.testing.assert_array_equal(value.asnumpy(), uninterrupted[name].asnumpy(), err_msg=name)


EMA_HYPERPARAMETERS = {**TINY_HYPERPARAMETERS, "ema_decay": "0.5"}


@pytest.fixture(scope="module")
def trained_ema(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    """The tiny training job of `trained`, keeping a moving average of its weights."""
    return finished_training(tmp_path_factory.mktemp("training-ema"), splits, EMA_HYPERPARAMETERS)


def params(path: Path) -> dict[str, Array]:
    return {name: value.asnumpy() for name, value in mx.nd.load(str(path)).items()}


def assert_same_params(first: Path, second: Path) -> None:
    one, other = params(first), params(second)
    assert one.keys() == other.keys()
    for name, value in one.items():
        np.testing.assert_array_equal(value, other[name], err_msg=name)


def test_the_average_leaves_the_training_as_it_was_and_validates_beside_it(
    trained: JobResult, trained_ema: JobResult
) -> None:
    # the same losses, raw validation mAP and learned weights as the job without an average, bit for bit
    lines = epoch_lines(trained_ema)
    assert [re.sub(r" ema_val_map=\S+", "", without_speed(line)) for line in lines] == [
        without_speed(line) for line in epoch_lines(trained)
    ]
    latest = Path("checkpoints", "latest.params")
    assert_same_params(trained_ema.root / latest, trained.root / latest)
    assert not (trained.root / "checkpoints" / "latest-ema.params").exists()  # ema off: no average at all
    # every validating epoch's line has the average's mAP, which the metric regex reads
    (ema_map,) = [d for d in metric_definitions() if d["Name"] == "validation:ema_map"]
    curves = json.loads((trained_ema.root / "model" / "training_curves.json").read_text())["epochs"]
    found = [float(re.search(ema_map["Regex"], line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert found == [round(entry["ema_val_map"], 4) for entry in curves]
    # the exported weights are the better of the two bests, and the metadata says which
    meta = json.loads((trained_ema.root / "model" / "model-meta.json").read_text())
    raw_best, ema_best = max(e["val_map"] for e in curves), max(e["ema_val_map"] for e in curves)
    assert (meta["raw_best_val_map"], meta["ema_best_val_map"]) == (raw_best, ema_best)
    assert meta["weights"] == ("ema" if ema_best > raw_best else "raw")
    assert meta["best_val_map"] == max(raw_best, ema_best)
    state = json.loads((trained_ema.root / "checkpoints" / "state.json").read_text())
    assert state["ema_updates"] == sum(entry["updates"] for entry in curves)


def test_resumes_the_average_from_checkpoints_and_ends_as_the_uninterrupted_job(
    trained_ema: JobResult, splits: Path, tmp_path: Path
) -> None:
    # Given the checkpoints of a job with an average that stopped after epoch 1
    root = training_root(tmp_path, splits, EMA_HYPERPARAMETERS)
    first = run_job("detector.train", root, env={"DETECTOR_STOP_AFTER_EPOCHS": "1"})
    assert first.returncode != 0
    # When it restarts
    second = run_job("detector.train", root)
    # Then it ends as the uninterrupted job: the same epoch line, weights, average and exported model, bit for bit
    assert second.returncode == 0, second.stderr
    assert "resumed from checkpoint epochs_done=1" in second.stdout
    assert [without_speed(line) for line in epoch_lines(second)] == [without_speed(epoch_lines(trained_ema)[1])]
    for name in ("checkpoints/latest.params", "checkpoints/latest-ema.params", "model/model-0000.params"):
        assert_same_params(root / name, trained_ema.root / name)
    meta, uninterrupted = (json.loads((r / "model" / "model-meta.json").read_text()) for r in (root, trained_ema.root))
    for key in ("weights", "best_epoch", "best_val_map", "raw_best_val_map", "ema_best_val_map", "nms_threshold"):
        assert meta[key] == uninterrupted[key], key


def test_starts_from_the_weights_of_a_pretrained_channel(trained: JobResult, splits: Path, tmp_path: Path) -> None:
    # Given the weights of an earlier run (for example pre-training on synthetic images) as channel `pretrained`
    root = training_root(tmp_path, splits, {**TINY_HYPERPARAMETERS, "epochs": "1", "warmup_epochs": "0"})
    pretrained = root / "input" / "data" / "pretrained"
    pretrained.mkdir()
    (pretrained / "init.params").symlink_to(trained.root / "checkpoints" / "best.params")
    # When the job trains
    result = run_job("detector.train", root)
    # Then it started from them
    assert result.returncode == 0, result.stderr
    assert "starting from pretrained weights file=init.params" in result.stdout


def test_without_validation_the_last_epoch_is_exported(splits: Path, tmp_path: Path) -> None:
    root = training_root(tmp_path, splits, {**TINY_HYPERPARAMETERS, "epochs": "1", "warmup_epochs": "0"}, ("train",))
    result = run_job("detector.train", root)
    assert result.returncode == 0, result.stderr
    assert "val_map" not in epoch_lines(result)[0]
    meta = json.loads((root / "model" / "model-meta.json").read_text())
    assert meta["best_epoch"] == 1
    assert meta["best_val_map"] is None
    assert (meta["nms_threshold"], meta["nms_threshold_source"]) == (0.45, nms.NO_VALIDATION)
    assert "score_threshold" not in meta


def test_mixup_label_smoothing_more_anchors_an_ignore_iou_and_the_giou_term_train(splits: Path, tmp_path: Path) -> None:
    options = {"mixup": "true", "no_mixup_epochs": "1", "label_smoothing": "true", "random_expand": "true"}
    options |= {"anchor_match_iou": "0.3", "ignore_iou": "0.5", "giou_loss_weight": "1.5"}
    root = training_root(tmp_path, splits, {**TINY_HYPERPARAMETERS, **options})
    result = run_job("detector.train", root)
    assert result.returncode == 0, result.stderr
    lines = epoch_lines(result)
    assert len(lines) == 2
    (box_loss,) = [d for d in metric_definitions() if d["Name"] == "train:box_loss"]
    values = [float(re.search(box_loss["Regex"], line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert all(0 < value < 1e4 for value in values), lines
    curves = json.loads((root / "model" / "training_curves.json").read_text())["epochs"]
    assert [round(entry["box_loss"], 4) for entry in curves] == values
    assert (root / "model" / "model-symbol.json").is_file()
    exported = mx.nd.load(str(root / "model" / "model-0000.params"))
    assert not [name for name in exported if "giou" in name]  # the loss's constants stay out of the model


def test_bad_hyperparameters_fail_naming_each(splits: Path, tmp_path: Path) -> None:
    bad = {**TINY_HYPERPARAMETERS, "epochs": "many", "data_width": "100", "backbone": "resnet", "colour": "red"}
    root = training_root(tmp_path, splits, bad)
    result = run_job("detector.train", root)
    assert result.returncode == 1
    failure = result.failure("failure")
    for expected in ("epochs: 'many'", "colour: unknown hyperparameter"):
        assert expected in failure
    assert "\n" not in failure


@pytest.mark.parametrize("value", ["-0.5", "101", "nan"])
def test_a_giou_loss_weight_outside_0_to_100_is_refused_by_name(value: str) -> None:
    with pytest.raises(jobs.JobError, match="giou_loss_weight: must be between 0"):
        hyperparameters.parse({"giou_loss_weight": value})


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_an_anchor_match_iou_outside_0_to_1_is_refused_by_name(value: str) -> None:
    with pytest.raises(jobs.JobError, match="anchor_match_iou: must be above 0 and at most 1"):
        hyperparameters.parse({"anchor_match_iou": value})


@pytest.mark.parametrize("value", ["0", "1.2", "nan"])
def test_an_ignore_iou_outside_0_to_1_is_refused_by_name(value: str) -> None:
    with pytest.raises(jobs.JobError, match="ignore_iou: must be above 0 and at most 1"):
        hyperparameters.parse({"ignore_iou": value})


def test_missing_train_channel_fails_clearly(tmp_path: Path) -> None:
    result = run_job("detector.train", tmp_path)
    assert result.returncode == 1
    assert result.failure("failure").startswith("train channel: no .rec file in")


def test_the_learning_rate_schedule_ends_with_the_last_epoch() -> None:
    hp = hyperparameters.parse({"epochs": "10", "warmup_epochs": "2", "learning_rate": "0.01", "lr_mode": "cosine"})
    schedule = trainer.lr_schedule(hp, images=140, batch_size=8)  # 17.5 updates per epoch with rollover
    total = 175
    assert schedule(0) == 0.0
    assert schedule(35) == pytest.approx(0.01)  # warm-up done after 2 epochs
    assert 0 < schedule(total - 2) < 0.0001  # still decaying in the last epoch
    assert schedule(total - 1) == pytest.approx(0.0, abs=1e-12)
    step = hyperparameters.parse(
        {"epochs": "10", "warmup_epochs": "0", "learning_rate": "0.001", "lr_mode": "step", "lr_decay_epochs": "5"}
    )
    stepped = trainer.lr_schedule(step, images=140, batch_size=8)
    assert stepped(87) == pytest.approx(0.001)
    assert stepped(88) == pytest.approx(0.0001)


def test_two_devices_share_each_batch_and_train_one_model(splits: Path, tmp_path: Path) -> None:
    # two CPU contexts stand for two GPUs: each batch split in halves, one backward over both, one update
    root = training_root(tmp_path, splits, {**TINY_HYPERPARAMETERS, "epochs": "1", "warmup_epochs": "0"})

    result = run_job("detector.train", root, env={"DETECTOR_CPU_CONTEXTS": "2"})

    assert result.returncode == 0, result.stderr + result.failure("failure")
    assert "contexts=cpu(0),cpu(1) batch_size=4" in result.stdout
    assert len(epoch_lines(result)) == 1
    meta = json.loads((root / "model" / "model-meta.json").read_text())
    assert meta["best_epoch"] == 1
    assert (root / "model" / "model-0000.params").stat().st_size > 0


def test_a_batch_that_does_not_split_over_the_devices_fails_naming_both(splits: Path, tmp_path: Path) -> None:
    root = training_root(tmp_path, splits, {**TINY_HYPERPARAMETERS, "batch_size": "5"})

    result = run_job("detector.train", root, env={"DETECTOR_CPU_CONTEXTS": "2"})

    assert result.returncode == 1
    assert result.failure("failure") == "batch_size 5 does not split over this host's 2 devices: use a multiple of 2"


@pytest.mark.parametrize(
    ("batch", "images", "count", "expected"), [(8, 100, 2, 8), (8, 5, 2, 4), (8, 7, 1, 7), (4, 4, 4, 4)]
)
def test_the_host_batch_shrinks_to_the_data_only_in_whole_slices(
    batch: int, images: int, count: int, expected: int
) -> None:
    from detector import devices

    assert devices.host_batch(batch, images, count) == expected
