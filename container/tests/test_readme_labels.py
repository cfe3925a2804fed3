"""The README's sample `labels.csv` is one the feature-group CSV reader takes as written."""

from __future__ import annotations

import csv
import io
import re

from detector.records import FEATURES, parse_record

from tests.conftest import REPO


def _sample() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```text\n(source_ref,.*?)```", text, flags=re.DOTALL)
    assert found, "the README's sample labels.csv block"
    return found.group(1)


def test_the_readme_sample_rows_parse_with_their_boxes() -> None:
    reader = csv.DictReader(io.StringIO(_sample()))
    assert tuple(reader.fieldnames or ()) == FEATURES
    records = [parse_record(row) for row in reader]
    assert [len(record.annotations) for record in records] == [1, 0]
    box = records[0].annotations[0]
    assert (box.class_id, box.left, box.top, box.width, box.height) == (0, 81, 123, 82, 97)
    assert records[0].source_ref.startswith("images/")
    assert records[0].status == "APPROVED"
