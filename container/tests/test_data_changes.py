"""What changed since the champion, on constructed manifests: exact counts per split and in total, bounded examples."""

from __future__ import annotations

from detector import data_changes, manifest
from detector.records import Box

ONE, TWO = Box(0, 10, 20, 30, 40), Box(0, 50, 60, 7, 8)


def entry(split: str, name: str, boxes: tuple[Box, ...] = (ONE,), pixels: str = "a") -> manifest.Entry:
    return manifest.Entry(
        split=split,
        source_ref=f"s3://images/{name}.jpg",
        version_id="v1",
        sha256=pixels * 64,
        annotations_sha256=manifest.annotations_sha256(boxes),
        boxes=len(boxes),
        labeling_job="labeling-job/metal-tags",
        event_time=manifest.timestamp(1_700_000_000),
        write_time=manifest.timestamp(1_700_000_010),
    )


def round_trip(entries: list[manifest.Entry]) -> list[manifest.Entry]:
    """As Evaluate reads them: the manifest's bytes, loaded back."""
    return manifest.loads(manifest.dumps(entries))


def test_the_same_manifest_changes_nothing() -> None:
    entries = [entry("train", "a"), entry("train", "b"), entry("test", "c")]
    changes = data_changes.compare(round_trip(entries), round_trip(entries), champion_version=3)
    assert changes["champion_version"] == 3
    assert changes["totals"] == {
        "added": 0, "removed": 0, "moved": 0, "relabelled": 0, "pixels_changed": 0, "images": 3, "champion_images": 3,
    }  # fmt: skip
    assert changes["splits"]["train"] == {
        "added": 0, "removed": 0, "relabelled": 0, "pixels_changed": 0, "images": 2, "champion_images": 2,
    }  # fmt: skip
    assert changes["examples"] == {kind: [] for kind in data_changes.TOTAL_KINDS}


def test_added_removed_relabelled_and_repixelled_are_counted_per_split_and_in_total() -> None:
    # Given the champion's data, and now: one train image added, one validation image removed, one test image
    # relabelled (a second box), one train image with new pixels and new labels
    then = [entry("train", "a"), entry("train", "b"), entry("validation", "v"), entry("test", "t")]
    now = [
        entry("train", "a"),
        entry("train", "b", boxes=(TWO,), pixels="b"),
        entry("train", "new"),
        entry("test", "t", boxes=(ONE, TWO)),
    ]
    # When they are compared
    changes = data_changes.compare(round_trip(now), round_trip(then), champion_version=7)
    # Then each kind is counted where it happened
    assert changes["splits"] == {
        "train": {"added": 1, "removed": 0, "relabelled": 1, "pixels_changed": 1, "images": 3, "champion_images": 2},
        "validation": {"added": 0, "removed": 1, "relabelled": 0, "pixels_changed": 0, "images": 0,
                       "champion_images": 1},
        "test": {"added": 0, "removed": 0, "relabelled": 1, "pixels_changed": 0, "images": 1, "champion_images": 1},
    }  # fmt: skip
    assert changes["totals"] == {
        "added": 1, "removed": 1, "moved": 0, "relabelled": 2, "pixels_changed": 1, "images": 4, "champion_images": 4,
    }  # fmt: skip
    assert changes["examples"] == {
        "added": ["s3://images/new.jpg"],
        "removed": ["s3://images/v.jpg"],
        "moved": [],
        "relabelled": ["s3://images/b.jpg", "s3://images/t.jpg"],
        "pixels_changed": ["s3://images/b.jpg"],
    }


def test_the_order_of_boxes_is_not_a_relabelling() -> None:
    then = [entry("train", "a", boxes=(ONE, TWO))]
    now = [entry("train", "a", boxes=(TWO, ONE))]
    assert data_changes.compare(now, then, champion_version=1)["totals"]["relabelled"] == 0


def test_an_image_that_changed_split_is_moved_in_total_and_added_and_removed_in_its_splits() -> None:
    then = [entry("train", "a"), entry("test", "m")]
    now = [entry("train", "a"), entry("train", "m", boxes=(TWO,))]
    changes = data_changes.compare(now, then, champion_version=2)
    assert changes["totals"] == {
        "added": 0, "removed": 0, "moved": 1, "relabelled": 1, "pixels_changed": 0, "images": 2, "champion_images": 2,
    }  # fmt: skip
    assert (changes["splits"]["train"]["added"], changes["splits"]["test"]["removed"]) == (1, 1)
    assert changes["splits"]["train"]["relabelled"] == 0
    assert changes["examples"]["moved"] == ["s3://images/m.jpg"]


def test_examples_are_bounded_and_in_manifest_order_while_counts_are_exact() -> None:
    # Given 40 new images over every split
    now = [entry(split, f"{split}-{number:02}") for split in manifest.SPLITS for number in range(13)] + [
        entry("train", "z")
    ]
    changes = data_changes.compare(now, [], champion_version=1)
    assert changes["totals"]["added"] == 40
    assert [changes["splits"][split]["added"] for split in manifest.SPLITS] == [14, 13, 13]
    # Then the examples are the first few, train first
    assert changes["examples"]["added"] == [f"s3://images/train-{number:02}.jpg" for number in range(5)]
    assert len(changes["examples"]["added"]) == data_changes.EXAMPLES


def test_absent_says_why() -> None:
    assert data_changes.absent(None, "no approved model in the group") == {
        "champion_version": None,
        "absent": "no approved model in the group",
    }
