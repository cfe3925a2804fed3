"""The moving average of the weights (ema_decay) on constructed networks: the update and its warm-up, BatchNorm's
running statistics included, the swap for validation, the checkpoint that lacks it, and which weights are exported."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mxnet as mx
import numpy as np
import pytest
from detector import averaging, checkpoints, hyperparameters, jobs, model
from detector.arrays import Array
from detector.averaging import WeightAverage
from detector.checkpoints import EMA, RAW, Checkpoints, Progress
from detector.export import Trained, write_model
from detector.validation import Validator
from mxnet import autograd, gluon


class Small(gluon.HybridBlock):  # type: ignore[misc]
    """A dense layer, BatchNorm (running statistics: no gradient) and a constant."""

    def __init__(self) -> None:
        super().__init__()
        with self.name_scope():
            self.dense = gluon.nn.Dense(3, in_units=2)
            self.norm = gluon.nn.BatchNorm(in_channels=3)
            self.scale = self.params.get_constant("scale", mx.nd.array([2.0]))

    def hybrid_forward(self, F: Any, x: Any, scale: Any) -> Any:
        return F.broadcast_mul(self.norm(self.dense(x)), scale)


def small_net() -> Small:
    net = Small()
    net.initialize()
    return net


def values(net: Any) -> dict[str, Array]:
    return {name: p.data().asnumpy().copy() for name, p in net._collect_params_with_prefix().items()}


def train_step(net: Any, sgd: gluon.Trainer, seed: int) -> None:
    """One SGD step on a random batch (the BatchNorm statistics move too)."""
    data = mx.nd.array(np.random.default_rng(seed).normal(size=(4, 2)))
    with autograd.record():
        loss = (net(data) ** 2).sum()
    loss.backward()
    sgd.step(4)


def with_trainer() -> tuple[Small, gluon.Trainer]:
    net = small_net()
    return net, gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})


def averaged(steps: int, decay: float) -> tuple[Small, gluon.Trainer, WeightAverage]:
    """A network trained `steps` steps, the average of its weights updated after each."""
    net, sgd = with_trainer()
    average = WeightAverage(net, decay, mx.cpu())
    for step in range(1, steps + 1):
        train_step(net, sgd, step)
        average.update()
    return net, sgd, average


def test_the_decay_warms_up_as_tensorflows_and_stops_at_the_decay() -> None:
    assert averaging.decay_at(0.999, 1) == pytest.approx(2 / 11)
    assert averaging.decay_at(0.999, 10) == pytest.approx(11 / 20)
    assert averaging.decay_at(0.9, 100) == 0.9  # 101/110 > 0.9
    assert averaging.decay_at(0.9, 80) == pytest.approx(81 / 90)  # equal: min
    assert averaging.decay_at(0.5, 10) == 0.5  # 11/20 > 0.5


def test_every_update_averages_every_parameter_with_the_warmed_up_decay_batchnorm_statistics_too() -> None:
    # Given a network, its trainer and an average of decay 0.9
    net, sgd = with_trainer()
    average = WeightAverage(net, 0.9, mx.cpu())
    # When it trains 30 steps, the average updated after each
    expected: dict[str, Array] = {}
    for step in range(1, 31):
        train_step(net, sgd, step)
        average.update()
        now = values(net)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {n: now[n] if step == 1 else decay * expected[n] + (1 - decay) * now[n] for n in average.averaged}
    # Then the average is the formula's, for the weights and the running statistics alike; constants are not averaged
    assert average.updates == 30
    assert {n.split(".")[-1] for n in average.averaged} >= {"weight", "bias", "running_mean", "running_var"}
    assert "scale" not in average.averaged
    for name, value in expected.items():
        np.testing.assert_allclose(average.shadow[name].asnumpy(), value, rtol=1e-5, atol=1e-7, err_msg=name)
        assert not np.array_equal(value, values(net)[name]), name  # it is an average, not the last weights


def test_the_average_reads_the_running_statistics_a_static_graph_wrote_in_the_step() -> None:
    # Given a hybridized convolutional network with static memory, as Train's (BatchNorm's statistics are written
    # inside the graph, out of sight of MXNet's engine)
    net = gluon.model_zoo.vision.mobilenet0_25(classes=2)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    sgd = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
    average = WeightAverage(net, 0.8, mx.cpu())
    expected: dict[str, Array] = {}
    for step in range(1, 4):
        data = mx.nd.array(np.random.default_rng(step).normal(size=(2, 3, 32, 32)))
        with autograd.record():
            loss = net(data).square().sum()
        loss.backward()
        sgd.step(2)
        # When the average is updated right after the step
        average.update()
        now = values(net)
        decay = min(0.8, (1 + step) / (10 + step))
        expected = {n: now[n] if step == 1 else decay * expected[n] + (1 - decay) * now[n] for n in average.averaged}
    # Then it averaged the statistics of this step's forward pass, not the ones before it
    for name, value in expected.items():
        np.testing.assert_allclose(average.shadow[name].asnumpy(), value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_average_validates_in_place_and_the_raw_weights_come_back_bit_for_bit() -> None:
    net, _, average = averaged(5, 0.5)
    raw = values(net)

    with average.in_place():
        inside = values(net)

    for name in average.averaged:
        np.testing.assert_array_equal(inside[name], average.shadow[name].asnumpy())
    after = values(net)
    for name, value in raw.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_the_saved_average_loads_as_the_network_and_back_as_the_average(tmp_path: Path) -> None:
    _, _, average = averaged(3, 0.5)
    average.save(tmp_path / "ema.params")

    other = small_net()
    other.load_parameters(str(tmp_path / "ema.params"))  # a whole network's parameters, constants included
    restored = WeightAverage(small_net(), 0.5, mx.cpu())
    restored.load(tmp_path / "ema.params", average.updates)

    assert restored.updates == 3
    for name in average.averaged:
        np.testing.assert_array_equal(values(other)[name], average.shadow[name].asnumpy())
        np.testing.assert_array_equal(restored.shadow[name].asnumpy(), average.shadow[name].asnumpy())


def test_a_checkpoint_without_the_average_is_not_resumed_by_a_job_that_averages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the checkpoint of a job that kept no average (ema off), with the same fingerprint
    net, sgd = with_trainer()
    train_step(net, sgd, 1)
    folder = Checkpoints(tmp_path, "same")
    progress = Progress()
    improved = progress.record({"epoch": 1, "val_map": 0.5})
    folder.save(net, sgd, progress, improved=improved)
    # When a job that averages restores from it
    fresh, fresh_sgd = with_trainer()
    train_step(fresh, fresh_sgd, 2)
    before = values(fresh)
    with caplog.at_level(logging.INFO, logger="detector.train"):
        restored = folder.restore(fresh, fresh_sgd, [mx.cpu()], average=WeightAverage(fresh, 0.9, mx.cpu()))
    # Then it starts afresh and says why; its weights are untouched
    assert restored == Progress()
    assert "checkpoint ignored reason=no weight average (ema_decay) in it" in caplog.text
    for name, value in values(fresh).items():
        np.testing.assert_array_equal(value, before[name])
    # while a job without an average resumes from it
    assert Checkpoints(tmp_path, "same").restore(small_net(), fresh_sgd, [mx.cpu()]).epochs_done == 1


def test_a_checkpoint_of_a_job_that_averages_resumes_the_average_and_its_count(tmp_path: Path) -> None:
    net, sgd, average = averaged(3, 0.9)
    progress = Progress()
    improved = progress.record({"epoch": 1, "val_map": 0.5, "ema_val_map": 0.6})
    Checkpoints(tmp_path, "same").save(net, sgd, progress, improved=improved, average=average)

    fresh, fresh_sgd = with_trainer()
    train_step(fresh, fresh_sgd, 9)
    resumed = WeightAverage(fresh, 0.9, mx.cpu())
    restored = Checkpoints(tmp_path, "same").restore(fresh, fresh_sgd, [mx.cpu()], average=resumed)

    assert (restored.epochs_done, restored.ema_best_map, restored.ema_best_epoch) == (1, 0.6, 1)
    assert resumed.updates == 3
    for name in average.averaged:
        np.testing.assert_array_equal(resumed.shadow[name].asnumpy(), average.shadow[name].asnumpy())
    assert (tmp_path / "best-ema.params").is_file()


@pytest.mark.parametrize(
    ("raw", "ema", "weights", "exported"),
    [
        ([0.3, 0.5], [0.4, 0.6], EMA, (2, 0.6)),  # the average validates better
        ([0.3, 0.6], [0.4, 0.5], RAW, (2, 0.6)),
        ([0.3, 0.5], [0.5, 0.4], RAW, (2, 0.5)),  # a tie stays with the raw weights
        ([0.3, 0.5], None, RAW, (2, 0.5)),  # ema off
        (None, None, RAW, (None, None)),  # no validation split
    ],
)
def test_the_exported_weights_are_the_average_only_when_it_validates_better(
    raw: list[float] | None, ema: list[float] | None, weights: str, exported: tuple[int | None, float | None]
) -> None:
    progress = Progress()
    for epoch in (1, 2):
        entry: dict[str, Any] = {"epoch": epoch, "val_map": raw[epoch - 1] if raw else None}
        if ema is not None:
            entry["ema_val_map"] = ema[epoch - 1]
        progress.record(entry)
    assert progress.weights == weights
    assert progress.exported == exported


def yolo_weights(net: Any, scale: float) -> None:
    for param in net.collect_params().values():
        if not isinstance(param, gluon.Constant):
            param.set_data(param.data() * scale)


@pytest.mark.parametrize("better", [EMA, RAW])
def test_the_model_exports_the_weights_that_validated_better(better: str, tmp_path: Path) -> None:
    # Given a network whose best raw weights and best average (a scaled copy) differ, and their validation figures
    hp = hyperparameters.parse({"epochs": "2", "warmup_epochs": "0", "data_width": "96", "data_height": "64"})
    net = model.build(hp.backbone, hp.classes)
    model.set_inference(net)
    net(mx.nd.zeros((1, 3, 64, 96)))
    net.save_parameters(str(tmp_path / "best.params"))
    yolo_weights(net, 0.5)
    net.save_parameters(str(tmp_path / "best-ema.params"))
    yolo_weights(net, 3.0)  # the last epoch's weights, neither
    progress = Progress()
    timing = {"seconds": 1.0, "obj_loss": 1.0}
    progress.record({"epoch": 1, **timing, "val_map": 0.4, "ema_val_map": 0.5 if better == EMA else 0.3})
    progress.record({"epoch": 2, **timing, "val_map": 0.2, "ema_val_map": 0.1})
    data = SimpleNamespace(train=[0] * 10, validation=[0] * 4)
    validator = Validator(graph=None, loader=None, classes=hp.classes, ctx=mx.cpu(), interval=1, epochs=2)
    trained = Trained(
        net=net, progress=progress, best=tmp_path / "best.params", best_ema=tmp_path / "best-ema.params",
        data=data, validator=validator,  # type: ignore[arg-type]
    )  # fmt: skip
    # When the model is written
    write_model(trained, hp, tmp_path / "model")
    # Then its parameters are those of the better one, and its metadata says which and both figures
    chosen = mx.nd.load(str(tmp_path / ("best-ema.params" if better == EMA else "best.params")))
    exported = mx.nd.load(str(tmp_path / "model" / "model-0000.params"))
    for name, param in net._collect_params_with_prefix().items():
        if not isinstance(param, gluon.Constant):
            key = f"{'aux' if param.grad_req == 'null' else 'arg'}:{param.name}"
            np.testing.assert_array_equal(exported[key].asnumpy(), chosen[name].asnumpy(), err_msg=key)
    meta = json.loads((tmp_path / "model" / "model-meta.json").read_text())
    assert meta["weights"] == better
    assert (meta["best_epoch"], meta["best_val_map"]) == (1, 0.5 if better == EMA else 0.4)
    assert (meta["raw_best_epoch"], meta["raw_best_val_map"]) == (1, 0.4)
    assert (meta["ema_best_epoch"], meta["ema_best_val_map"]) == (1, 0.5 if better == EMA else 0.3)
    curves = json.loads((tmp_path / "model" / "training_curves.json").read_text())
    assert (curves["weights"], curves["best_val_map"]) == (better, meta["best_val_map"])


@pytest.mark.parametrize("value", ["-0.1", "1", "1.5", "nan"])
def test_an_ema_decay_outside_0_to_1_is_refused_by_name(value: str) -> None:
    with pytest.raises(jobs.JobError, match="ema_decay: must be at least 0 and below 1"):
        hyperparameters.parse({"ema_decay": value})


def test_the_default_keeps_no_average() -> None:
    assert hyperparameters.parse({}).ema_decay == 0.0
    assert checkpoints.Progress().weights == RAW
