"""What changed in the data since the champion: a run after one image was relabelled and one added shows exactly
that, in its Slack approval request and in GET /runs/{id}. Its own stack (this module's), so that the first run's
model is the only champion."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from local import drive
from local.drive import approval_request, follow
from local.stack import LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import IMAGES, start_run


def changed_labels(folder: Path, stack: LocalStack) -> tuple[str, str]:
    """A labels.csv in `folder` with one image relabelled (a box dropped, at a later event time) and one image not
    ingested before (the synthetic set's next one: image i depends only on the seed and i); their source_refs as
    the offline store names them."""
    drive.synthesize(folder / "all", count=IMAGES + 1)
    with (folder / "all" / "labels.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    relabelled = next(row for row in rows[:IMAGES] if len(json.loads(row["annotations"])) >= 2)
    relabelled["annotations"] = json.dumps(json.loads(relabelled["annotations"])[:1])
    relabelled["event_time"] = str(float(relabelled["event_time"]) + 1000)
    added = rows[IMAGES]
    (folder / "changes" / "images").mkdir(parents=True)
    with (folder / "changes" / "labels.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in (relabelled, added):
            writer.writerow(row)
            shutil.copyfile(folder / "all" / row["source_ref"], folder / "changes" / row["source_ref"])
    # detector.ingest puts each image under images/ in the stack's bucket, and names it so in the record
    relabelled_ref, added_ref = (f"s3://{stack.bucket}/images/{row['source_ref']}" for row in (relabelled, added))
    return relabelled_ref, added_ref


def approval_text(stack: LocalStack, version: int) -> str:
    message = approval_request(stack, version)
    return "\n".join(str(block["text"]["text"]) for block in message["blocks"] if block["type"] == "section")


def test_a_run_after_a_relabel_and_an_addition_shows_one_of_each_since_the_champion(
    stack: LocalStack, api: Api, tmp_path: Path
) -> None:
    # Given a first run, whose model is approved: the champion
    first = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert first["status"] == "Succeeded", first
    nothing = first["data_changes"]
    assert (nothing["champion_version"], nothing["absent"]) == (None, "no approved model in the group")
    v1 = first["model"]["version"]
    status, _ = api.call("POST", f"/models/{v1}/approve", {"comment": "the champion of this test"})
    assert status == 200
    assert first["data_changes"]["summary"] in approval_text(stack, v1)

    # When one image is relabelled and one added, and a second run starts
    relabelled, added = changed_labels(tmp_path, stack)
    drive.ingest(stack, tmp_path / "changes")
    second = follow(api, start_run(api, {"MapThreshold": 0.0}))

    # Then GET /runs/{id} counts one of each since v1, and nothing else
    assert second["status"] == "Succeeded", second
    changes = second["data_changes"]
    assert changes["champion_version"] == v1
    assert changes.get("absent") is None, changes
    totals = changes["totals"]
    assert {kind: totals[kind] for kind in ("added", "removed", "moved", "relabelled", "pixels_changed")} == {
        "added": 1, "removed": 0, "moved": 0, "relabelled": 1, "pixels_changed": 0,
    }  # fmt: skip
    assert totals["images"] == totals["champion_images"] + 1
    assert sum(split["added"] for split in changes["splits"].values()) == 1
    assert sum(split["relabelled"] for split in changes["splits"].values()) == 1
    assert (changes["examples"]["added"], changes["examples"]["relabelled"]) == ([added], [relabelled])
    assert changes["summary"].startswith(f"Data since v{v1}: +1 image, 1 relabelled, 0 removed (")
    # and the evaluation report it comes from says the same
    assert second["evaluation"]["data_changes"]["totals"] == totals

    # And the second model's approval request shows the same line, with the two images
    text = approval_text(stack, second["model"]["version"])
    assert changes["summary"] in text.split("\n")
    assert f"added `{added}`" in text
    assert f"relabelled `{relabelled}`" in text
