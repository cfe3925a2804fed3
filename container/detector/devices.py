"""The devices one host trains on: every GPU present, else the CPU; and a batch that splits evenly over them.

`DETECTOR_CPU_CONTEXTS=N` trains on N CPU contexts instead of one, which exercises the multi-device path
(split, one backward over all slices, one update) on a machine without GPUs.
"""

from __future__ import annotations

import os

import mxnet as mx

from detector import jobs

CPU_CONTEXTS_ENV = "DETECTOR_CPU_CONTEXTS"


def contexts() -> list[mx.Context]:
    gpus = mx.context.num_gpus()
    if gpus:
        return [mx.gpu(i) for i in range(gpus)]
    count = int(os.environ.get(CPU_CONTEXTS_ENV) or 1)
    return [mx.cpu(i) for i in range(max(1, count))]


def kvstore(devices: list[mx.Context]) -> str:
    """`device` aggregates gradients on the GPUs themselves; one device or CPUs need only `local`."""
    return "device" if len(devices) > 1 and devices[0].device_type == "gpu" else "local"


def host_batch(batch_size: int, images: int, devices: int) -> int:
    """The batch this host trains with: `batch_size`, a multiple of the device count (each gets an equal slice),
    shrunk to the dataset only as far as a multiple still allows."""
    if batch_size % devices:
        raise jobs.JobError(
            f"batch_size {batch_size} does not split over this host's {devices} devices: use a multiple of {devices}"
        )
    if images >= batch_size:
        return batch_size
    fitted = images - images % devices
    if fitted == 0:
        raise jobs.JobError(f"train channel: {images} images cannot fill one batch slice on each of {devices} devices")
    return fitted
