"""YOLO txt (Ultralytics, Darknet, CVAT's YOLO 1.1, LabelImg): one `.txt` per image, a line `class cx cy w h` per
box, the centre and size normalised to the image's (0 to 1); the image's size comes from its header. The class list
is `data.yaml`'s `names` (a list, or {index: name}), else `obj.names`, else `classes.txt` (one name a line); a class
index is mapped to the config's classes by its name there.

The images are every .jpg/.jpeg/.png/.bmp under the folder; an image's label file is the Ultralytics one (the last
`images` folder of its path replaced by `labels`, .txt) or the .txt beside it. An image without a label file has no
boxes (YOLO writes none for an image without objects); a label file without an image is refused (the folder's
own train.txt, val.txt, valid.txt and test.txt are Darknet's image lists, not label files). A box is named
`FILE line N` (N from 1); an image with a refused line is not ingested."""

from __future__ import annotations

from pathlib import Path

import yaml

from detector import jobs
from detector.labels.common import Context, Labelled, Place, Problem, Read, image, inside, number, trace
from detector.records import Box, RecordError

CLASS_LISTS = ("data.yaml", "obj.names", "classes.txt")
# Darknet's and CVAT's lists of the images of each split: not label files
IMAGE_LISTS = ("train.txt", "valid.txt", "val.txt", "test.txt")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def class_list(folder: Path) -> list[str]:
    """The export's class names, in index order, from the first of CLASS_LISTS that the folder holds."""
    path = next((folder / name for name in CLASS_LISTS if (folder / name).is_file()), None)
    if path is None:
        raise jobs.JobError(f"{folder}: no YOLO class list (looked for {', '.join(CLASS_LISTS)})")
    if path.suffix != ".yaml":
        return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    try:
        names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as error:
        raise jobs.JobError(f"{path}: not a YOLO data.yaml ({error})") from None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[index] for index in range(len(names))]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise jobs.JobError(f"{path}: names: expected a list of class names (or {{index: name}}), got {names!r}")
    return names


def label_file(picture: Path) -> Path:
    """The Ultralytics label file of an image when it exists, else the .txt beside it."""
    parts = picture.with_suffix(".txt").parts
    if "images" in parts:
        last = len(parts) - 1 - parts[::-1].index("images")
        ultralytics = Path(*parts[:last], "labels", *parts[last + 1 :])
        if ultralytics.is_file():
            return ultralytics
    return picture.with_suffix(".txt")


def box(line: str, names: list[str], *, context: Context, size: tuple[int, int]) -> Box:
    fields = line.split()
    if len(fields) != 5:
        raise RecordError(f"expected 'class cx cy w h', got {line.strip()!r}")
    try:
        index = int(fields[0])
        cx, cy, w, h = (number(float(value), "cx cy w h") for value in fields[1:])
    except ValueError:
        raise RecordError(f"expected 'class cx cy w h' (numbers), got {line.strip()!r}") from None
    if not 0 <= index < len(names):
        raise RecordError(f"class {index}: not in the class list ({len(names)} names)")
    class_id = context.classes.id_of(names[index])
    width, height = size
    return inside(Box(class_id, (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height), *size)


class _Reader:
    def __init__(self, folder: Path, context: Context) -> None:
        self.folder, self.context = folder, context
        self.names = class_list(folder)
        self.read = Read([], [])

    def name(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def one(self, picture: Path) -> None:
        labels = label_file(picture)
        place = Place(self.name(picture), (self.name(labels), 0))
        try:
            found = image(self.context.images, picture.relative_to(self.context.images).as_posix())
        except (RecordError, ValueError) as error:
            self.read.problems.append(Problem(place, self.name(picture), str(error)))
            return
        try:
            lines = labels.read_text(encoding="utf-8").splitlines() if labels.is_file() else []
        except (OSError, UnicodeDecodeError) as error:
            self.read.problems.append(Problem(place, found.source_ref, f"{self.name(labels)}: unreadable ({error})"))
            return
        boxes, refused = [], False
        for number_, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                boxes.append(box(line, self.names, context=self.context, size=(found.width, found.height)))
            except RecordError as error:
                refused = True
                where = Place(f"{self.name(labels)} line {number_}", (self.name(labels), number_))
                self.read.problems.append(Problem(where, found.source_ref, str(error)))
        if not refused:
            job = trace("yolo", self.folder, self.context.images)
            self.read.labelled.append(Labelled(place, self.context.record(found, tuple(boxes), job=job)))

    def run(self) -> Read:
        pictures = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        used = {label_file(picture) for picture in pictures}
        for picture in pictures:
            self.one(picture)
        for orphan in sorted(self.folder.rglob("*.txt")):
            listing = orphan.parent == self.folder and orphan.name in (*CLASS_LISTS, *IMAGE_LISTS)
            if orphan not in used and not listing and orphan.is_file():
                place = Place(self.name(orphan), (self.name(orphan), 0))
                self.read.problems.append(Problem(place, "", "no image for this label file"))
        return self.read


def read(folder: Path, context: Context) -> Read:
    return _Reader(folder, context).run()
