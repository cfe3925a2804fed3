"""What the hosts of a distributed training job do together, at the same points of the job on every host: the
first host's initial weights to every host, the epoch they all start from, the decision to stop on a diverged
loss, and the proof that they end with one model. Alone, a host does none of it (MXNet's parameter server,
detector.parameter_server, is not started)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mxnet as mx
from mxnet import autograd, gluon

from detector import cluster, jobs, parameter_server, trainer

log = logging.getLogger("detector.train")


@dataclass(frozen=True)
class Agreement:
    hosts: cluster.Cluster
    session: parameter_server.Session | None  # None: this host trains alone

    def infer_shapes(self, net: Any, ctx: list[mx.Context], shape: tuple[int, int]) -> None:
        """Every parameter's shape known (an inference forward of a `shape` (height, width) image), so that the
        first host's values can reach every host."""
        if self.session is None:
            return
        height, width = shape
        with autograd.predict_mode():
            net(mx.nd.zeros((1, 3, height, width), ctx=ctx[0]))
        # An inference forward leaves convolution weights in oneDNN's own layout, which the kvstore's push
        # cannot read: the push fails inside MXNet's engine without a word, the first host's initial values
        # never reach the servers and a peer's pull aborts them ("init N first"). reset_ctx copies every
        # parameter into new arrays (assigning into the old ones would keep their layout).
        net.collect_params().reset_ctx(ctx)

    def start(self, sgd: gluon.Trainer, epochs_done: int) -> None:
        """MXNet's rank 0's weights (restored or new; the same seed and checkpoints give every host the same) to
        every host before the first step: otherwise a worker may race the initial broadcast and keep other
        weights for good (restoring has broadcast them already). Then every host resumes from the same epoch."""
        if self.session is None:
            return
        if not sgd._kv_initialized:
            sgd._init_kvstore()
        if sgd._params_to_init:
            sgd._init_params()
        mx.nd.waitall()
        self.session.agree_on_start(epochs_done)

    @property
    def watchdog(self) -> parameter_server.Watchdog | None:
        return self.session.watchdog if self.session is not None else None

    def diverged(self, here: bool) -> bool:
        """Whether any host's loss diverged: the same decision on every host."""
        return self.session.any(here) if self.session is not None else here

    def show_one_model(self, net: Any, ctx: list[mx.Context]) -> None:
        """Every host's copy of the learned weights, to show that they are one model."""
        if self.session is None:
            return
        total = sum(float(p.data(ctx[0]).astype("float64").sum().asscalar()) for p in trainer.trainable(net))
        jobs.event(log, "parameters", host=self.hosts.current_host, checksum=f"{total:.6f}")
