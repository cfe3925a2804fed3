"""The YOLOv3 network, its data transforms and the RecordIO datasets, shared by train and evaluate."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv import model_zoo
from gluoncv.data import RecordFileDetection
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import experimental
from gluoncv.data.transforms import image as timage
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform

from detector import jobs
from detector.arrays import Array
from detector.targets import Targets

BACKBONES = ("mobilenet1.0", "mobilenet0.25", "darknet53")
STRIDE = 32  # the coarsest YOLOv3 feature map: data shapes are multiples of it
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NMS_THRESHOLD = 0.45
NMS_TOPK = 400
POST_NMS = 100
SYMBOL_PREFIX = "model"
META_FILE = "model-meta.json"
PADDING = np.full((1, 5), -1.0, np.float32)  # GluonCV's padding row: no object


def build(backbone: str, classes: tuple[str, ...]) -> Any:
    """A freshly initialised YOLOv3 whose head predicts exactly `classes` (no pretrained weights: none offline)."""
    if backbone not in BACKBONES:
        raise jobs.JobError(f"backbone: {backbone!r} is not one of {', '.join(BACKBONES)}")
    net = model_zoo.get_model(f"yolo3_{backbone}_custom", classes=list(classes), pretrained_base=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "parameters already initialized" noise for the shared anchors
        net.initialize()
    return net


def set_inference(net: Any) -> None:
    net.set_nms(nms_thresh=NMS_THRESHOLD, nms_topk=NMS_TOPK, post_nms=POST_NMS)


def clip_boxes(boxes: mx.nd.NDArray, width: int, height: int) -> mx.nd.NDArray:
    """Predicted corners clipped to the image: x to its width, y to its height."""
    limits = mx.nd.array([width, height, width, height], ctx=boxes.context).reshape((1, 1, 4))
    return mx.nd.broadcast_minimum(mx.nd.maximum(boxes, 0), limits)


def find_rec(folder: Path, what: str) -> Path | None:
    """The one `.rec` file of a channel or input folder (None when the folder is absent or empty)."""
    if not folder.is_dir():
        return None
    found = sorted(folder.rglob("*.rec"))
    if len(found) > 1:
        raise jobs.JobError(f"{what}: expected one .rec file in {folder}, found {len(found)}")
    return found[0] if found else None


def records(path: Path) -> RecordFileDetection:
    """A detection dataset over `path`; labels are [xmin, ymin, xmax, ymax, cls] in pixels, padding cls -1."""
    return RecordFileDetection(str(path), coord_normalized=True)


def objects_in(label: Array) -> Array:
    rows: Array = label[label[:, 4] >= 0]
    return rows


class TrainTransform(YOLO3DefaultTrainTransform):  # type: ignore[misc]
    """GluonCV's YOLOv3 augmentation, with random expansion optional and images without scratches allowed.

    Zooming out (GluonCV always does it, p=0.5) shrinks 1-3 px scratches below a pixel: off by default. Vertical
    flips are added, since a scratch looks the same upside down.
    """

    def __init__(self, width: int, height: int, net: Any, mixup: bool = False, random_expand: bool = False) -> None:
        super().__init__(width, height, net, mean=MEAN, std=STD, mixup=mixup)
        self._random_expand = random_expand
        self._num_classes = len(net.classes)
        self._numpy_targets: Targets | None = None

    def __call__(self, src: mx.nd.NDArray, label: Array) -> tuple[mx.nd.NDArray, ...]:
        bbox = objects_in(label)
        img = experimental.image.random_color_distort(src)
        if self._random_expand and np.random.uniform(0, 1) > 0.5:
            img, expand = timage.random_expand(img, fill=[m * 255 for m in self._mean])
            bbox = tbbox.translate(bbox, x_offset=expand[0], y_offset=expand[1])
        h, w, _ = img.shape
        if len(bbox):
            bbox, crop = experimental.bbox.random_crop_with_constraints(bbox, (w, h))
            img = mx.image.fixed_crop(img, *crop)
        h, w, _ = img.shape
        img = timage.imresize(img, self._width, self._height, interp=np.random.randint(0, 5))
        bbox = tbbox.resize(bbox, (w, h), (self._width, self._height))
        img, flips = timage.random_flip(img, px=0.5, py=0.5)
        bbox = tbbox.flip(bbox, (self._width, self._height), flip_x=flips[0], flip_y=flips[1])
        img = mx.nd.image.normalize(mx.nd.image.to_tensor(img), mean=self._mean, std=self._std)
        if not len(bbox):
            bbox = PADDING if not self._mixup else np.full((1, 6), -1.0, np.float32)
        bbox = bbox.astype(np.float32)
        mixratio = bbox[:, -1:] if self._mixup else None
        targets = self._targets(self._width, self._height, bbox[:, :4], bbox[:, 4:5], mixratio)
        return (img, *(mx.nd.array(t) for t in targets), mx.nd.array(bbox[:, :4]))

    @property
    def _targets(self) -> Targets:
        """GluonCV's target generation, in NumPy (detector.targets): the same values, a fraction of the time."""
        if self._numpy_targets is None:
            self._numpy_targets = Targets(self._anchors, self._offsets, self._feat_maps, self._num_classes)
        return self._numpy_targets


def val_transform(width: int, height: int) -> YOLO3DefaultValTransform:
    return YOLO3DefaultValTransform(width, height, mean=MEAN, std=STD)


def export(net: Any, folder: Path, width: int, height: int, meta: dict[str, Any]) -> None:
    """symbol + params (NMS baked in) and the metadata evaluate needs, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    set_inference(net)
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros((1, 3, height, width)))
    net.export(str(folder / SYMBOL_PREFIX), epoch=0)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_exported(folder: Path) -> tuple[Any, dict[str, Any]]:
    """The exported network (a SymbolBlock) and its metadata."""
    meta_path = folder / META_FILE
    symbol = folder / f"{SYMBOL_PREFIX}-symbol.json"
    params = folder / f"{SYMBOL_PREFIX}-0000.params"
    missing = [p.name for p in (meta_path, symbol, params) if not p.is_file()]
    if missing:
        raise jobs.JobError(f"model: {', '.join(missing)} missing from the model archive")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(str(symbol), ["data"], str(params))
    return net, meta
