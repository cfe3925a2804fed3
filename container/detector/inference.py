"""Detections for one image, as `serve` and `python -m detector.predict` give them.

The image is decoded and resized to the model's training shape exactly as Evaluate does (the same validation
transform), run through the exported network (NMS baked in at the threshold training chose, which the answer's
`model` names), and the boxes are scaled back to the original image's pixels. The score threshold is, in order:
the request's, `SCORE_THRESHOLD` in the environment (the model package's container sets the evaluation's), the
model's metadata (`score_threshold`), 0.5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector import jobs

jobs.cpu_threads()  # before mxnet is imported

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from detector import images, model, nms, transforms  # noqa: E402

THRESHOLD_ENV = "SCORE_THRESHOLD"
DEFAULT_THRESHOLD = 0.5
# what a caller learns about the model beside its detections
MODEL_FIELDS = ("backbone", "classes", "epochs", "best_epoch", "best_val_map", "data_width", "data_height")


class BadInput(ValueError):
    """The request cannot be answered as sent (not an image, a bad threshold): the caller's to fix."""


def threshold_of(text: str, source: str) -> float:
    """A score threshold given as text (a header, a variable), or BadInput naming where it came from."""
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{source}: {text!r} is not a number") from None
    if not 0 <= value <= 1:  # NaN fails this too
        raise BadInput(f"{source}: {text!r} is not between 0 and 1")
    return value


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]

    def as_json(self) -> dict[str, Any]:
        return {"class": self.label, "score": round(self.score, 4), "box": [round(v, 2) for v in self.box]}


class Predictor:
    """The exported model of `folder` (symbol, params, model-meta.json), loaded once."""

    def __init__(self, folder: Path) -> None:
        self.net, self.meta = model.load_exported(folder)
        self.classes = tuple(self.meta["classes"])
        self.width, self.height = int(self.meta["data_width"]), int(self.meta["data_height"])
        self.transform = transforms.val_transform(self.width, self.height)
        self.net.hybridize(static_alloc=True, static_shape=True)
        environment = os.environ.get(THRESHOLD_ENV)
        if environment is not None:
            self.default_threshold = threshold_of(environment, THRESHOLD_ENV)
        else:
            self.default_threshold = float(self.meta.get("score_threshold", DEFAULT_THRESHOLD))
        self.net(mx.nd.zeros((1, 3, self.height, self.width)))  # the first call builds the static graph
        mx.nd.waitall()

    def model_info(self) -> dict[str, Any]:
        nms_threshold, nms_source = nms.of_meta(self.meta)
        info = {key: self.meta.get(key) for key in MODEL_FIELDS}
        return info | {"nms_threshold": nms_threshold, "nms_threshold_source": nms_source}

    def detect(self, data: bytes, threshold: float | None = None) -> tuple[list[Detection], tuple[int, int]]:
        """The detections at or above the threshold, in the original image's pixels, and its (width, height)."""
        try:
            images.whole_image(data)
        except images.NotAnImage as error:
            raise BadInput(f"the body is {error}") from None
        try:
            image = mx.image.imdecode(data)  # RGB, as Evaluate's RecordIO images
        except mx.base.MXNetError:
            raise BadInput("the body is not a decodable image") from None
        height, width = image.shape[:2]
        tensor, _ = self.transform(image, np.zeros((0, 5)))
        ids, scores, boxes = self.net(tensor.expand_dims(0))
        boxes = model.clip_boxes(boxes, self.width, self.height)
        cut = self.default_threshold if threshold is None else threshold
        scale = np.array([width / self.width, height / self.height] * 2)
        found = []
        rows = zip(ids[0].asnumpy()[:, 0], scores[0].asnumpy()[:, 0], boxes[0].asnumpy(), strict=True)
        for class_id, score, box in rows:
            if class_id < 0 or score < cut:
                continue
            x0, y0, x1, y1 = (box * scale).tolist()
            found.append(Detection(self.classes[int(class_id)], float(score), (x0, y0, x1, y1)))
        return found, (width, height)

    def answer(self, data: bytes, threshold: float | None = None) -> dict[str, Any]:
        """The JSON body of an invocation."""
        found, (width, height) = self.detect(data, threshold)
        return {
            "detections": [d.as_json() for d in found],
            "image": {"width": width, "height": height},
            "score_threshold": self.default_threshold if threshold is None else threshold,
            "model": self.model_info(),
        }
