"""Every model's mAP is measured at GluonCV's NMS 0.45 (the gate and the champion comparison judge ranking, not
the operating point); precision, recall and `map_at_model_nms` count what the model serves at its own NMS."""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
import pytest
from detector import scoring
from mxnet import gluon

WIDTH, HEIGHT = 96, 64
FIRST, SECOND = [4, 4, 40, 12], [6, 16, 44, 24]  # two scratches side by side


class Fixed:
    """Stands in for an exported graph: the same detections [corners, score] for every image."""

    def __init__(self, *found: tuple[list[int], float]) -> None:
        rows = [[0, score, *corners] for corners, score in found] + [[-1, -1, -1, -1, -1, -1]] * 4
        self.rows = mx.nd.array(np.array(rows, dtype=np.float32)[None])

    def __call__(self, data: Any) -> tuple[Any, Any, Any]:
        rows = mx.nd.repeat(self.rows, repeats=data.shape[0], axis=0)
        return rows[:, :, 0:1], rows[:, :, 1:2], rows[:, :, 2:6]


def test_map_is_the_ranking_nets_and_the_counts_are_the_serving_nets() -> None:
    # Given one image with two scratches: at 0.45 both are found; at the model's own low NMS the second is
    # swallowed by the first
    image = mx.nd.zeros((HEIGHT, WIDTH, 3), dtype="uint8")
    test_set = gluon.data.SimpleDataset([(image, np.array([[*FIRST, 0], [*SECOND, 0]], dtype=np.float32))])
    meta = {"classes": ["scratch"], "data_width": WIDTH, "data_height": HEIGHT, "score_threshold": 0.5,
            "nms_threshold": 0.2, "nms_threshold_source": "validation"}  # fmt: skip
    nets = scoring.Nets(serving=Fixed((FIRST, 0.9)), ranking=Fixed((FIRST, 0.9), (SECOND, 0.8)))
    counting = scoring.Counting(score_threshold=None, score_threshold_floor=0.1, grid=0, batch_size=1)

    # When
    scores = scoring.score(nets, meta, test_set, counting=counting)

    # Then
    assert scores.map == pytest.approx(1.0)
    assert scores.map_at_model_nms == pytest.approx(0.5, abs=0.05)
    assert (scores.precision, scores.recall) == (1.0, 0.5)
    assert scores.nms_threshold == 0.2

    # and a model that serves at 0.45 is measured once, with the same figure both ways
    alone = scoring.score(scoring.Nets(serving=nets.ranking), meta, test_set, counting=counting)
    assert alone.map == alone.map_at_model_nms == pytest.approx(1.0)
    assert alone.recall == 1.0
