"""The training batches (detector.batches): an epoch's batches follow from (seed, epoch) alone, and a worker
process makes exactly the batches the training process makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from detector import batches, model, transforms
from detector.arrays import Array


@pytest.mark.parametrize(("images", "batch_size"), [(24, 8), (23, 4), (10, 3), (5, 5)])
def test_one_host_runs_through_one_permutation_per_epoch_in_whole_batches(images: int, batch_size: int) -> None:
    plan = batches.Plan(images, batch_size, seed=7)
    epochs = [plan.epoch(epoch) for epoch in range(6)]
    stream = [item for epoch in epochs for batch in epoch for item in batch]

    assert all(len(batch) == batch_size for epoch in epochs for batch in epoch)
    # the batches ending in an epoch, as Gluon's last_batch="rollover" gives them
    assert [len(epoch) for epoch in epochs] == [
        (e + 1) * images // batch_size - e * images // batch_size for e in range(6)
    ]
    for cycle in range(len(stream) // images):
        assert sorted(item.index for item in stream[cycle * images : (cycle + 1) * images]) == list(range(images))
    assert len({item.seed for item in stream}) == len(stream)  # every image of the stream its own augmentation
    assert batches.Plan(images, batch_size, seed=7).epoch(4) == epochs[4]  # nothing carried from earlier epochs
    assert batches.Plan(images, batch_size, seed=8).epoch(0) != epochs[0]


def test_hosts_take_disjoint_equal_shards_in_whole_batches() -> None:
    plans = [batches.Plan(50, 4, seed=3, rank=rank, hosts=3) for rank in range(3)]
    for epoch in range(3):
        shards = [[item for batch in plan.epoch(epoch) for item in batch] for plan in plans]
        assert [len(shard) for shard in shards] == [16, 16, 16]
        indices = [item.index for shard in shards for item in shard]
        assert len(set(indices)) == len(indices)
        assert len({item.seed for shard in shards for item in shard}) == len(indices)


def test_a_worker_process_makes_the_batches_the_training_process_makes(splits: Path) -> None:
    rec = next((splits / "processing" / "output" / "train").glob("*.rec"))
    net = model.build("mobilenet0.25", ("scratch",))
    transform = transforms.TrainTransform(96, 64, net, mixup=True)
    plan = batches.Plan(len(batches.Records(rec)), 4, seed=5)
    made: dict[int, list[list[Array]]] = {}
    for workers in (0, 1):
        loader = batches.Loader(batches.Examples(batches.Records(rec), transform, mixup=True), plan, workers)
        made[workers] = []
        for epoch in range(2):
            made[workers] += [[array.asnumpy() for array in batch] for batch in loader.epoch(epoch, mixup=epoch == 0)]

    assert len(made[0]) == len(made[1]) == len(plan.epoch(0)) + len(plan.epoch(1))
    for serial, worker in zip(made[0], made[1], strict=True):
        assert len(serial) == 7  # image, five targets, boxes
        for a, b in zip(serial, worker, strict=True):
            np.testing.assert_array_equal(a, b)
    # and the epochs differ: mixup on, then off
    assert not np.array_equal(made[0][0][0], made[0][len(plan.epoch(0))][0])
