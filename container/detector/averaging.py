"""An exponential moving average of the network's weights (`ema_decay`), kept on the first host beside the raw
weights: updated after every optimizer step, validated after the epochs that validate, checkpointed, and exported
in place of the raw weights when it validates better.

Every parameter is averaged, BatchNorm's running mean and variance too (inference uses them); the constants
(anchors, offsets, a loss's constants) are not. The decay warms up as TensorFlow's ExponentialMovingAverage does
with `num_updates`: update n uses min(decay, (1 + n) / (10 + n)), so the average follows the weights closely while
they move fast at the start.

Its cost, measured at mobilenet0.25, 320x224, batch 8 on 2 cores (6.1 million values in 241 arrays): 31-43 ms an
update, 1-1.5% of a step; each validating epoch validates twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mxnet as mx
from mxnet import gluon


def decay_at(decay: float, updates: int) -> float:
    """The decay of update number `updates` (from 1): TF's warm-up, capped at `decay`."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """The average of `net`'s weights on the device `ctx` (the copy validation reads)."""

    def __init__(self, net: Any, decay: float, ctx: mx.Context) -> None:
        # keyed as save_parameters names them, so that the average's file loads into the network
        self.params: dict[str, gluon.Parameter] = net._collect_params_with_prefix()
        self.averaged = tuple(name for name, p in self.params.items() if not isinstance(p, gluon.Constant))
        self.decay = decay
        self.ctx = ctx
        self.shadow: dict[str, mx.nd.NDArray] = {}
        self.updates = 0

    def update(self) -> None:
        """After an optimizer step: ema = d * ema + (1 - d) * w, in place. The average starts at the weights after
        the first step (GluonCV initialises them at the first forward pass)."""
        self.updates += 1
        # A hybridized graph with static memory writes BatchNorm's running statistics out of sight of MXNet's
        # engine: read before the step's work is done, they are the previous step's (measured on mobilenet)
        mx.nd.waitall()
        if not self.shadow:
            self.shadow = {name: self.params[name].data(self.ctx).copy() for name in self.averaged}
            return
        decay = decay_at(self.decay, self.updates)
        for name, average in self.shadow.items():
            average *= decay
            average += self.params[name].data(self.ctx) * (1 - decay)

    @contextmanager
    def in_place(self) -> Iterator[None]:
        """The average in the network's weights on `ctx` for the block's duration, the raw weights back after."""
        mx.nd.waitall()  # the last step's running statistics written (update)
        raw = {name: self.params[name].data(self.ctx).copy() for name in self.shadow}
        for name, average in self.shadow.items():
            self.params[name].data(self.ctx)[:] = average
        mx.nd.waitall()  # in place before a static graph reads them
        try:
            yield
        finally:
            mx.nd.waitall()
            for name, weights in raw.items():
                self.params[name].data(self.ctx)[:] = weights
            mx.nd.waitall()

    def save(self, path: Path) -> None:
        """The average as a parameter file of the whole network (its constants as they are): load_parameters
        reads it."""
        arrays = {name: self.shadow.get(name, p.data(self.ctx)) for name, p in self.params.items()}
        mx.nd.save(str(path), arrays)

    def load(self, path: Path, updates: int) -> None:
        """The average and its update count from a checkpoint (save's file)."""
        arrays = mx.nd.load(str(path))
        self.shadow = {name: arrays[name].as_in_context(self.ctx) for name in self.averaged}
        self.updates = updates
