"""COCO instances JSON (what CVAT, Label Studio and Roboflow export): `images` ({id, file_name, width, height}),
`annotations` ({id, image_id, category_id, bbox: [x, y, width, height] in 0-based pixels}), `categories`
({id, name}). A category is mapped to the config's classes by its name. An image is named `FILE image N` and an
annotation `FILE annotation N` (N: its position in the file's list, from 0); an image with a refused annotation is
not ingested (a record without one of its boxes would teach that the object is background); an image without
annotations goes in with no boxes, as COCO means it."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from detector import jobs
from detector.labels.common import (
    Context,
    Labelled,
    Place,
    Problem,
    Read,
    image,
    inside,
    number,
    positive_integer,
    same_size,
    trace,
)
from detector.records import Box, RecordError


def _lists(path: Path) -> dict[str, list[Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise jobs.JobError(f"{path}: not a COCO JSON file ({error})") from None
    if not isinstance(data, dict):
        raise jobs.JobError(f"{path}: not a COCO JSON file (expected an object)")
    lists = {key: data.get(key) for key in ("images", "annotations", "categories")}
    wrong = [key for key, value in lists.items() if not isinstance(value, list)]
    if wrong:
        raise jobs.JobError(f"{path}: not COCO instances: no {', '.join(wrong)} list")
    return {key: value for key, value in lists.items() if isinstance(value, list)}


def _categories(path: Path, items: list[Any]) -> dict[int, str]:
    names = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), int) or not isinstance(item.get("name"), str):
            raise jobs.JobError(f"{path.name} category {index}: expected {{id, name}}, got {item!r}")
        names[item["id"]] = item["name"]
    return names


class _Reader:
    def __init__(self, path: Path, context: Context) -> None:
        self.path, self.context = path, context
        self.lists = _lists(path)
        self.names = _categories(path, self.lists["categories"])
        self.job = trace("coco", path, context.images)
        self.read = Read([], [])

    def place(self, kind: str, index: int) -> Place:
        return Place(f"{self.path.name} {kind} {index}", (f"{self.path.name} {kind}", index))

    def box(self, item: Any, found: dict[str, Any]) -> Box:
        if not isinstance(item, dict):
            raise RecordError(f"expected an object, got {type(item).__name__}")
        bbox = item.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise RecordError(f"bbox: expected [x, y, width, height], got {bbox!r}")
        x, y, width, height = (number(value, "bbox") for value in bbox)
        if item.get("iscrowd"):
            raise RecordError("iscrowd: a crowd region is not one object's box")
        if not isinstance(item.get("category_id"), int) or item["category_id"] not in self.names:
            raise RecordError(f"category_id {item.get('category_id')!r}: not in the file's categories")
        class_id = self.context.classes.id_of(self.names[item["category_id"]])
        return inside(Box(class_id, x, y, width, height), found["width"], found["height"])

    def image_fields(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("file_name"), str):
            raise RecordError(f"expected {{id, file_name, width, height}}, got {item!r}")
        if isinstance(item.get("id"), bool) or not isinstance(item.get("id"), (int, str)):
            raise RecordError(f"id: expected an integer, got {item.get('id')!r}")
        return {
            "id": item["id"],
            "file_name": item["file_name"],
            "width": positive_integer(item.get("width"), "width"),
            "height": positive_integer(item.get("height"), "height"),
        }

    def images(self) -> dict[Any, tuple[int, dict[str, Any]]]:
        found: dict[Any, tuple[int, dict[str, Any]]] = {}
        for index, item in enumerate(self.lists["images"]):
            try:
                fields = self.image_fields(item)
                if fields["id"] in found:
                    raise RecordError(f"id {fields['id']!r}: a second image with this id")
                found[fields["id"]] = (index, fields)
            except RecordError as error:
                self.read.problems.append(Problem(self.place("image", index), _name(item), str(error)))
        return found

    def run(self) -> Read:
        images = self.images()
        boxes: dict[Any, list[Box]] = defaultdict(list)
        refused: set[Any] = set()
        for index, item in enumerate(self.lists["annotations"]):
            given = item.get("image_id") if isinstance(item, dict) else None
            image_id = given if isinstance(given, (int, str)) else None
            try:
                if image_id not in images:
                    raise RecordError(f"image_id {given!r}: no such image in the file")
                boxes[image_id].append(self.box(item, images[image_id][1]))
            except RecordError as error:
                refused.add(image_id)
                source_ref = images[image_id][1]["file_name"] if image_id in images else ""
                self.read.problems.append(Problem(self.place("annotation", index), source_ref, str(error)))
        for image_id, (index, fields) in images.items():
            if image_id not in refused:
                self.record(self.place("image", index), fields, tuple(boxes[image_id]))
        return self.read

    def record(self, place: Place, fields: dict[str, Any], boxes: tuple[Box, ...]) -> None:
        try:
            found = image(self.context.images, fields["file_name"], beside=self.path.parent)
            same_size(found, fields["width"], fields["height"])
        except RecordError as error:
            self.read.problems.append(Problem(place, fields["file_name"], str(error)))
            return
        record = self.context.record(found, boxes, job=self.job)
        self.read.labelled.append(Labelled(place, record))


def _name(item: Any) -> str:
    return str(item.get("file_name") or "") if isinstance(item, dict) else ""


def read(path: Path, context: Context) -> Read:
    return _Reader(path, context).run()
