"""Label exports as people make them, read back into records: small real exports in each format (COCO, Pascal VOC,
YOLO, a Ground Truth output manifest) written from metal-tags' own records, and every box survives the round trip to
the pixel; bad rows and objects are named and the good ones kept."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from detector import ingest, jobs
from detector.labels import coco, feature_csv, formats, groundtruth, voc, yolo
from detector.labels.classes import ClassMap
from detector.labels.common import Context, Read
from detector.records import Record, parse_record

METAL_TAGS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "metal-tags"
NOW = 1_800_000_000.0
CLASSES = ClassMap(["scratch"])
# YOLO writes each normalised number with 6 significant digits (Ultralytics' "%g"): a coordinate is off by at most
# 5e-7 of the image's side (for values from 0.1 up; less below), and a box's left edge combines two of them
# (cx - w/2): under 1e-6 x 450 px = 0.00045 px for these 450-pixel-wide images. 0.001 px holds that with margin and
# is far below half a pixel, so no box moves to another pixel.
YOLO_TOLERANCE = 0.001


def context(images: Path) -> Context:
    return Context(images=images, classes=CLASSES, status="APPROVED", now=NOW)


@pytest.fixture(scope="module")
def metal() -> list[Record]:
    """Six of metal-tags' records (some with several boxes), and their images beside labels.csv."""
    if not (METAL_TAGS / "labels.csv").is_file():
        pytest.skip(f"{METAL_TAGS} is absent: the shared datasets live beside the repository")
    with (METAL_TAGS / "labels.csv").open(encoding="utf-8") as file:
        records = [parse_record(row) for row in csv.DictReader(file)]
    chosen = [r for r in records if len(r.annotations) > 1][:4] + [r for r in records if len(r.annotations) == 1][:2]
    assert len(chosen) == 6
    return chosen


def boxes(record: Record) -> list[tuple[int, float, float, float, float]]:
    return [(b.class_id, b.left, b.top, b.width, b.height) for b in record.annotations]


def by_name(read: Read) -> dict[str, Record]:
    return {Path(item.record.source_ref).name: item.record for item in read.labelled}


def copy_image(record: Record, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(METAL_TAGS / record.source_ref, target)


def write_coco(records: list[Record], folder: Path, *, extra: tuple[dict[str, Any], ...] = ()) -> Path:
    """A CVAT-style COCO export: annotations/instances_default.json, the images under images/."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, record in enumerate(records, start=1):
        copy_image(record, folder / "images" / Path(record.source_ref).name)
        images.append({"id": index, "file_name": Path(record.source_ref).name, "width": record.image_width,
                       "height": record.image_height})  # fmt: skip
        for box in record.annotations:
            bbox = [box.left, box.top, box.width, box.height]
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1, "iscrowd": 0,
                                "bbox": bbox, "area": box.width * box.height})  # fmt: skip
    annotations += list(extra)
    data = {"info": {}, "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "scratch"},
            {"id": 2, "name": "dent"}]}  # fmt: skip
    path = folder / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def voc_xml(record: Record, objects: list[tuple[str, tuple[float, float, float, float]]]) -> str:
    """A VOC file as LabelImg writes it: 1-based corners (GluonCV takes 1 off each)."""
    parts = [f"<annotation><folder>JPEGImages</folder><filename>{Path(record.source_ref).name}</filename>",
             f"<size><width>{record.image_width}</width><height>{record.image_height}</height>",
             f"<depth>{record.image_depth}</depth></size><segmented>0</segmented>"]  # fmt: skip
    for name, (xmin, ymin, xmax, ymax) in objects:
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>0</difficult><bndbox><xmin>{xmin:g}</xmin><ymin>{ymin:g}</ymin>"
                     f"<xmax>{xmax:g}</xmax><ymax>{ymax:g}</ymax></bndbox></object>")  # fmt: skip
    return "".join(parts) + "</annotation>"


def write_voc(records: list[Record], folder: Path) -> Path:
    for record in records:
        copy_image(record, folder / "JPEGImages" / Path(record.source_ref).name)
        objects = [("scratch", (b.left + 1, b.top + 1, b.left + b.width + 1, b.top + b.height + 1))
                   for b in record.annotations]  # fmt: skip
        path = folder / "Annotations" / Path(record.source_ref).with_suffix(".xml").name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(voc_xml(record, objects), encoding="utf-8")
    return folder


def yolo_line(index: int, record: Record, box: Any) -> str:
    w, h = record.image_width, record.image_height
    values = ((box.left + box.width / 2) / w, (box.top + box.height / 2) / h, box.width / w, box.height / h)
    return " ".join([str(index), *(f"{value:g}" for value in values)])


def write_yolo(records: list[Record], folder: Path) -> Path:
    """An Ultralytics export: data.yaml, images/train/*.jpg, labels/train/*.txt."""
    (folder / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (folder / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: dent\n  1: scratch\n")
    for record in records:
        name = Path(record.source_ref).name
        copy_image(record, folder / "images" / "train" / name)
        labels = folder / "labels" / "train" / Path(name).with_suffix(".txt")
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(yolo_line(1, record, box) + "\n" for box in record.annotations))
    return folder


def gt_line(record: Record, annotations: list[dict[str, Any]], attribute: str = "metal-tags") -> dict[str, Any]:
    created = datetime.fromtimestamp(record.event_time, UTC).replace(tzinfo=None).isoformat()
    return {
        "source-ref": f"s3://labeling-input/{record.source_ref}",
        attribute: {"image_size": [{"width": record.image_width, "height": record.image_height,
                                    "depth": record.image_depth}], "annotations": annotations},
        f"{attribute}-metadata": {"objects": [{"confidence": 0.0} for _ in annotations],
                                  "class-map": {"0": "scratch", "1": "dent"}, "type": "groundtruth/object-detection",
                                  "human-annotated": "yes", "creation-date": created, "job-name": record.labeling_job},
    }  # fmt: skip


def gt_boxes(record: Record) -> list[dict[str, Any]]:
    return [{"class_id": 0, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
            for b in record.annotations]  # fmt: skip


def write_groundtruth(records: list[Record], folder: Path, lines: tuple[str, ...] = ()) -> Path:
    """A labeling job's output manifest, the labelled bucket synced into the folder (aws s3 sync)."""
    for record in records:
        copy_image(record, folder / record.source_ref)
    path = folder / "manifests" / "output" / "output.manifest"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [json.dumps(gt_line(record, gt_boxes(record))) for record in records]
    path.write_text("\n".join([*body, *lines]) + "\n", encoding="utf-8")
    return path


def assert_same_boxes(read: Read, records: list[Record], tolerance: float = 0.0) -> None:
    assert read.problems == []
    got = by_name(read)
    assert sorted(got) == sorted(Path(r.source_ref).name for r in records)
    for record in records:
        back = got[Path(record.source_ref).name]
        assert (back.image_width, back.image_height, back.image_depth) == (
            record.image_width, record.image_height, record.image_depth)  # fmt: skip
        assert len(back.annotations) == len(record.annotations)
        for mine, theirs in zip(boxes(back), boxes(record), strict=True):
            assert mine[0] == theirs[0] == 0
            assert max(abs(a - b) for a, b in zip(mine[1:], theirs[1:], strict=True)) <= tolerance, (mine, theirs)


def test_coco_round_trip_keeps_every_box_to_the_pixel(metal: list[Record], tmp_path: Path) -> None:
    path = write_coco(metal, tmp_path)
    read = coco.read(path, context(tmp_path))
    assert_same_boxes(read, metal)
    record = read.labelled[0].record
    assert record.source_ref.startswith("images/")
    assert (record.labeling_job, record.event_time, record.status) == (
        f"coco:{tmp_path.name}/annotations/instances_default.json", NOW, "APPROVED")  # fmt: skip


def test_voc_round_trip_keeps_every_box_to_the_pixel(metal: list[Record], tmp_path: Path) -> None:
    read = voc.read(write_voc(metal, tmp_path), context(tmp_path))
    assert_same_boxes(read, metal)
    assert {item.record.labeling_job for item in read.labelled} == {f"voc:{tmp_path.name}"}


def test_voc_reads_corners_as_gluoncv_does() -> None:
    # Given VOC's 1-based corners of a box over pixels 10..19 x 20..29 (1-based 11..20 x 21..30; GluonCV's VOC
    # reader takes 1 off each corner)
    import xml.etree.ElementTree as ET

    element = ET.fromstring(
        "<object><name>scratch</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>21</xmax><ymax>31</ymax>"
        "</bndbox></object>"
    )
    box = voc.box(element, context(Path()), (100, 100))
    assert (box.left, box.top, box.width, box.height) == (10, 20, 10, 10)


def test_yolo_round_trip_keeps_every_box_within_a_thousandth_of_a_pixel(metal: list[Record], tmp_path: Path) -> None:
    read = yolo.read(write_yolo(metal, tmp_path), context(tmp_path))
    assert_same_boxes(read, metal, tolerance=YOLO_TOLERANCE)
    assert {item.record.source_ref.split("/")[:2] == ["images", "train"] for item in read.labelled} == {True}


def test_groundtruth_round_trip_keeps_boxes_job_and_time(metal: list[Record], tmp_path: Path) -> None:
    read = groundtruth.read(write_groundtruth(metal, tmp_path), context(tmp_path))
    assert_same_boxes(read, metal)
    for item in read.labelled:
        original = next(r for r in metal if r.source_ref == item.record.source_ref)
        assert (item.record.labeling_job, item.record.event_time) == (original.labeling_job, original.event_time)


def test_coco_names_unknown_classes_bad_and_outside_boxes_and_keeps_the_good(
    metal: list[Record], tmp_path: Path
) -> None:
    # Given an export whose image 2 has a dent (not the config's), image 3 a box outside it, image 4 a broken
    # annotation, and an annotation of an image the file does not list
    extra = [
        {"id": 901, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5]},
        {"id": 902, "image_id": 3, "category_id": 1, "bbox": [440, 10, 20, 5]},
        {"id": 903, "image_id": 4, "category_id": 1, "bbox": [1, 2, 3]},
        {"id": 904, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 905, "image_id": [1], "category_id": 1, "bbox": [1, 2, 3, 4]},
    ]
    path = write_coco(metal, tmp_path, extra=tuple(extra))
    (tmp_path / "images" / Path(metal[5].source_ref).name).unlink()

    read = coco.read(path, context(tmp_path))

    first = len([b for r in metal for b in r.annotations])
    name = [Path(r.source_ref).name for r in metal]
    assert [str(p) for p in read.problems] == [
        f"instances_default.json annotation {first} ({name[1]}): class 'dent' is not one of the config's classes "
        "(scratch)",
        f"instances_default.json annotation {first + 1} ({name[2]}): box [left, top, width, height] = [440, 10, 20, 5]"
        " is not inside the 450x300 image",
        f"instances_default.json annotation {first + 2} ({name[3]}): bbox: expected [x, y, width, height], got "
        "[1, 2, 3]",
        f"instances_default.json annotation {first + 3} (no source_ref): image_id 99: no such image in the file",
        f"instances_default.json annotation {first + 4} (no source_ref): image_id [1]: no such image in the file",
        f"instances_default.json image 5 ({name[5]}): image {name[5]} not found under {tmp_path}",
    ]
    assert sorted(by_name(read)) == sorted([name[0], name[4]])


def test_voc_names_the_file_and_object(metal: list[Record], tmp_path: Path) -> None:
    folder = write_voc(metal[:3], tmp_path)
    first, second = (Path(r.source_ref).with_suffix(".xml").name for r in metal[:2])
    box = (2.0, 2.0, 10.0, 10.0)
    (folder / "Annotations" / first).write_text(voc_xml(metal[0], [("scratch", box), ("rust", box)]))
    (folder / "Annotations" / second).write_text(voc_xml(metal[1], [("scratch", (5.0, 5.0, 460.0, 9.0))]))
    (folder / "Annotations" / "broken.xml").write_text("<annotation><filename>x.jpg</filename>")

    read = voc.read(folder, context(tmp_path))

    assert sorted(str(p) for p in read.problems) == sorted(
        [
            f"Annotations/{first} object 1 ({Path(metal[0].source_ref).name}): class 'rust' is not one of the config's "
            "classes (scratch)",
            f"Annotations/{second} object 0 ({Path(metal[1].source_ref).name}): box [left, top, width, height] = "
            "[4, 4, 455, 4] is not inside the 450x300 image",
            "Annotations/broken.xml (no source_ref): no element found: line 1, column 38",
        ]
    )
    assert list(by_name(read)) == [Path(metal[2].source_ref).name]


def test_yolo_names_the_file_and_line(metal: list[Record], tmp_path: Path) -> None:
    folder = write_yolo(metal[:4], tmp_path)
    stems = [Path(r.source_ref).stem for r in metal[:4]]
    labels = folder / "labels" / "train"
    (labels / f"{stems[0]}.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # dent
    (labels / f"{stems[1]}.txt").write_text("1 0.5 0.5 0.1 0.1\n1 0.99 0.5 0.1 0.1\n")  # off the right edge
    (labels / f"{stems[2]}.txt").write_text("1 0.5 0.5 0.1\n")
    (labels / "lost.txt").write_text("1 0.5 0.5 0.1 0.1\n")

    read = yolo.read(folder, context(tmp_path))

    refs = [f"images/train/{Path(r.source_ref).name}" for r in metal[:3]]
    assert sorted(str(p) for p in read.problems) == sorted(
        [
            f"labels/train/{stems[0]}.txt line 1 ({refs[0]}): class 'dent' is not one of the config's classes "
            "(scratch)",
            f"labels/train/{stems[1]}.txt line 2 ({refs[1]}): box [left, top, width, height] = [423, 135, 45, 30] is "
            "not inside the 450x300 image",
            f"labels/train/{stems[2]}.txt line 1 ({refs[2]}): expected 'class cx cy w h', got '1 0.5 0.5 0.1'",
            "labels/train/lost.txt (no source_ref): no image for this label file",
        ]
    )
    assert list(by_name(read)) == [Path(metal[3].source_ref).name]


def test_groundtruth_names_the_line_and_box_and_finds_the_label_attribute(metal: list[Record], tmp_path: Path) -> None:
    # Given a manifest whose label attribute is the job's own name, with a dent, a box off the image, a line that
    # is not JSON and one whose image was not synced
    record = metal[0]
    dent = gt_line(record, [{"class_id": 1, "left": 1, "top": 1, "width": 2, "height": 2}])
    off = gt_line(record, [{"class_id": 0, "left": 1, "top": 290, "width": 2, "height": 20}])
    missing = {**gt_line(record, gt_boxes(record)), "source-ref": "s3://labeling-input/images/nowhere.jpg"}
    lines = [json.dumps(dent), json.dumps(off), "{not json", json.dumps(missing)]
    path = write_groundtruth(metal[:2], tmp_path, tuple(lines))

    read = groundtruth.read(path, context(tmp_path))

    uri = f"s3://labeling-input/{record.source_ref}"
    assert [str(p) for p in read.problems] == [
        f"output.manifest line 3 box 0 ({uri}): class 'dent' is not one of the config's classes (scratch)",
        f"output.manifest line 4 box 0 ({uri}): box [left, top, width, height] = [1, 290, 2, 20] is not inside the "
        "450x300 image",
        "output.manifest line 5 (no source_ref): not JSON (Expecting property name enclosed in double quotes)",
        f"output.manifest line 6 (s3://labeling-input/images/nowhere.jpg): image images/nowhere.jpg not found under "
        f"{tmp_path}",
    ]
    assert len(read.labelled) == 2


def test_groundtruth_with_two_label_attributes_asks_which(metal: list[Record], tmp_path: Path) -> None:
    # Given a chained adjustment job's output: the first job's attribute and the adjusted one on each line
    record = metal[0]
    line = {**gt_line(record, gt_boxes(record)), **gt_line(record, gt_boxes(record)[:1], "adjusted-metal-tags")}
    path = write_groundtruth([], tmp_path, (json.dumps(line),))
    copy_image(record, tmp_path / record.source_ref)

    unnamed = groundtruth.read(path, context(tmp_path))
    named = groundtruth.read(path, context(tmp_path), label_attribute="adjusted-metal-tags")

    assert [p.reason for p in unnamed.problems] == [
        "label attribute: expected one whose -metadata has type groundtruth/object-detection, found 2 "
        "(adjusted-metal-tags, metal-tags): name one with --label-attribute"
    ]
    assert named.problems == []
    assert len(named.labelled[0].record.annotations) == 1


def test_csv_rows_with_a_box_outside_or_a_class_not_the_configs_are_named(metal: list[Record], tmp_path: Path) -> None:
    rows = [metal[0].feature_values(), metal[1].feature_values(), metal[2].feature_values()]
    rows[0]["annotations"] = json.dumps([{"class_id": 1, "top": 1, "left": 1, "height": 2, "width": 2}])
    rows[1]["annotations"] = json.dumps([{"class_id": 0, "top": 1, "left": 449, "height": 2, "width": 2}])
    path = tmp_path / "labels.csv"
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    read = feature_csv.read(path, context(tmp_path))

    assert [str(p) for p in read.problems] == [
        f"row 2 ({metal[0].source_ref}): annotations[0]: class_id 1 is not one of the config's (0 scratch)",
        f"row 3 ({metal[1].source_ref}): annotations[0]: box [left, top, width, height] = [449, 1, 2, 2] is not "
        "inside the 450x300 image",
    ]
    assert [item.record.source_ref for item in read.labelled] == [metal[2].source_ref]


def test_the_format_is_detected_from_the_path(metal: list[Record], tmp_path: Path) -> None:
    coco_file = write_coco(metal[:1], tmp_path / "c")
    assert formats.detect(tmp_path / "c") == ("coco", coco_file)
    assert formats.detect(coco_file) == ("coco", coco_file)
    assert formats.detect(write_voc(metal[:1], tmp_path / "v")) == ("voc", tmp_path / "v")
    assert formats.detect(write_yolo(metal[:1], tmp_path / "y")) == ("yolo", tmp_path / "y")
    assert formats.detect(tmp_path / "y" / "data.yaml") == ("yolo", tmp_path / "y")
    manifest = write_groundtruth(metal[:1], tmp_path / "g")
    assert formats.detect(tmp_path / "g") == ("groundtruth", manifest)
    assert formats.detect(METAL_TAGS) == ("csv", METAL_TAGS / "labels.csv")
    assert formats.detect(tmp_path / "y", "yolo") == ("yolo", tmp_path / "y")


def test_an_ambiguous_or_unknown_layout_is_refused_naming_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("source_ref\n")
    (tmp_path / "export.json").write_text("{}")
    with pytest.raises(jobs.JobError, match=r"several label exports \(looked for csv: labels.csv; .*found csv: "
                       r"labels.csv; coco: export.json\): name one with --format"):  # fmt: skip
        formats.detect(tmp_path)
    assert formats.detect(tmp_path, "coco") == ("coco", tmp_path / "export.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(jobs.JobError, match=r"no label export \(looked for csv: labels.csv; groundtruth: \*.manifest"):
        formats.detect(empty)
    with pytest.raises(jobs.JobError, match=r"an unknown label file"):
        formats.detect(_touch(tmp_path / "notes.txt"))


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def test_ingest_refuses_an_export_without_the_configs_classes_or_a_csv_with_a_status(
    metal: list[Record], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_coco(metal[:1], tmp_path)
    common = ["--bucket", "b", "--feature-group", "g"]
    for arguments, message in [
        (["--labels", str(path)], "--classes: the coco export names its classes; give the config's"),
        (["--labels", str(METAL_TAGS), "--status", "REJECTED"], "--status: the CSV gives each row its own status"),
    ]:
        with pytest.raises(SystemExit) as exited:
            ingest.main([*arguments, *common])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
