"""Which export a path is, and its reader. `--format` names it; otherwise it is detected from the path:

    a file:   *.csv -> csv, *.json -> coco, *.manifest or *.jsonl -> groundtruth,
              data.yaml, obj.names or classes.txt -> yolo (its folder)
    a folder: what it holds, and only one of these:
              csv          labels.csv
              groundtruth  *.manifest, or manifests/output/output.manifest (a labeling job's output folder)
              coco         *.json, or annotations/*.json
              voc          Annotations/*.xml, or *.xml
              yolo         data.yaml, obj.names or classes.txt

A folder matching none or several is refused, naming what was looked for and what was found; so is a folder with
several files of its format (name the one to read)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from detector import jobs
from detector.labels import coco, feature_csv, groundtruth, voc, yolo
from detector.labels.common import Context, Read

FORMATS = ("csv", "coco", "voc", "yolo", "groundtruth")
MARKERS = {
    "csv": ("labels.csv",),
    "groundtruth": ("*.manifest", "manifests/output/output.manifest"),
    "coco": ("*.json", "annotations/*.json"),
    "voc": ("Annotations/*.xml", "*.xml"),
    "yolo": yolo.CLASS_LISTS,
}
BY_SUFFIX = {".csv": "csv", ".json": "coco", ".manifest": "groundtruth", ".jsonl": "groundtruth"}
# the formats read from a folder; the others from one file
FOLDER_FORMATS = ("voc", "yolo")


def _matches(folder: Path, kind: str) -> list[Path]:
    return sorted({path for marker in MARKERS[kind] for path in folder.glob(marker) if path.is_file()})


def _of_file(path: Path) -> tuple[str, Path]:
    if path.name in yolo.CLASS_LISTS:
        return "yolo", path.parent
    if path.suffix.lower() in BY_SUFFIX:
        return BY_SUFFIX[path.suffix.lower()], path
    known = ", ".join([*BY_SUFFIX, *yolo.CLASS_LISTS])
    raise jobs.JobError(f"{path}: an unknown label file (known: {known}; a VOC export is read from its folder)")


def _looked_for() -> str:
    return "; ".join(f"{kind}: {' or '.join(markers)}" for kind, markers in MARKERS.items())


def detect(path: Path, kind: str | None = None) -> tuple[str, Path]:
    """The format of `path` (or `kind` when given) and what its reader reads: the file, or the folder."""
    if not path.exists():
        raise jobs.JobError(f"{path}: no such file or folder")
    if path.is_file():
        if kind is None:
            return _of_file(path)
        return kind, (path.parent if kind in FOLDER_FORMATS else path)
    found = {name: _matches(path, name) for name in ([kind] if kind else FORMATS)}
    found = {name: paths for name, paths in found.items() if paths}
    if len(found) != 1:
        what = "; ".join(f"{name}: {', '.join(p.name for p in paths)}" for name, paths in found.items()) or "nothing"
        problem = "no label export" if not found else "several label exports"
        raise jobs.JobError(f"{path}: {problem} (looked for {_looked_for()}; found {what}): name one with --format")
    ((detected, paths),) = found.items()
    if detected in FOLDER_FORMATS:
        return detected, path
    if len(paths) > 1:
        names = ", ".join(p.relative_to(path).as_posix() for p in paths)
        raise jobs.JobError(f"{path}: several {detected} files ({names}): name the one to read")
    return detected, paths[0]


Reader = Callable[[Path, Context], Read]


def reader(kind: str, *, label_attribute: str | None = None) -> Reader:
    if kind == "groundtruth":
        return lambda path, context: groundtruth.read(path, context, label_attribute=label_attribute)
    readers: dict[str, Reader] = {
        "csv": feature_csv.read,
        "coco": coco.read,
        "voc": voc.read,
        "yolo": yolo.read,
    }
    return readers[kind]
