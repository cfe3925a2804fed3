"""Ingest into S3 and the feature group, then preprocess from the offline store it wrote: the data path end to end.

Services: moto on loopback (S3, the feature group's definition) and the local feature-store runtime
(PutRecord, GetRecord, offline-store parquet, written after a delay as AWS writes it). The container's entry points
run in container/.venv, as in a job.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from local.emulator import reset_moto
from local.featurestore import ENDPOINT_ENV, FeatureStore, FeatureStoreServer
from local.template import feature_group_request
from pipeline_def.config import DEFAULT_CONFIG_PATH
from pipeline_def.names import ingest_log_uri
from rollout.environments import RolloutError, environment
from rollout.ingest import ingest
from sam_stack.container import run_module
from sam_stack.template import Template

BUCKET = "scratch-data"
GROUP = "scratch-labels"
LOG = ingest_log_uri(BUCKET, GROUP)


def container(
    module: str, *args: str, env: dict[str, str], root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_module(module, *args, env={**env, **({"OPT_ML_ROOT": str(root)} if root else {})}, timeout=300)


def serve(aws_env: dict[str, str], moto_endpoint: str, delay: float) -> Iterator[tuple[dict[str, str], FeatureStore]]:
    """The bucket and feature group in moto, the runtime on loopback with its offline store `delay` seconds behind;
    yields the environment that reaches both, and the store."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    # the template's group (its schema), with its store in the test's bucket
    request = {**feature_group_request(Template.load()), "FeatureGroupName": GROUP}
    request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] = f"s3://{BUCKET}/offline-store"
    boto3.client("sagemaker").create_feature_group(**request)
    server = FeatureStoreServer(FeatureStore(moto_endpoint, offline_delay=delay)).start()
    yield {**aws_env, ENDPOINT_ENV: server.endpoint}, server.store
    server.stop()
    reset_moto(moto_endpoint)


@pytest.fixture
def feature_store(aws_env: dict[str, str], moto_endpoint: str) -> Iterator[dict[str, str]]:
    """A store whose offline writes lag half a second."""
    for reaching, _ in serve(aws_env, moto_endpoint, 0.5):
        yield reaching


@pytest.fixture
def lagging(aws_env: dict[str, str], moto_endpoint: str) -> Iterator[tuple[dict[str, str], FeatureStore]]:
    """A store whose offline writes lag ten minutes (AWS documents up to fifteen)."""
    yield from serve(aws_env, moto_endpoint, 600)


def synthesized(folder: Path, env: dict[str, str], *, count: int, seed: int = 7) -> list[dict[str, str]]:
    made = container("detector.synth", "--output", str(folder), "--count", str(count), "--seed", str(seed), env=env)
    assert made.returncode == 0, made.stderr
    return list(csv.DictReader((folder / "labels.csv").open()))


def ingested(folder: Path, env: dict[str, str], *, wait: float) -> subprocess.CompletedProcess[str]:
    return container(
        "detector.ingest", "--labels", str(folder / "labels.csv"), "--bucket", BUCKET, "--feature-group", GROUP,
        "--ingest-log", LOG, "--wait-offline", str(wait), env=env,
    )  # fmt: skip


def preprocessed(env: dict[str, str], job: Path) -> subprocess.CompletedProcess[str]:
    """Preprocess over a copy of the offline store as it is now (what SageMaker downloads for the job)."""
    s3 = boto3.client("s3")
    resolved = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)["OfflineStoreConfig"][
        "S3StorageConfig"
    ]["ResolvedOutputS3Uri"]
    prefix = resolved.split(f"s3://{BUCKET}/", 1)[1]
    store = job / "processing" / "input" / "offline-store"
    store.mkdir(parents=True, exist_ok=True)
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        target = store / item["Key"][len(prefix) :].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, item["Key"], str(target))
    return container(
        "detector.preprocess", "--feature-group", GROUP, "--classes", "scratch", "--train-ratio", "1",
        "--validation-ratio", "0", "--test-ratio", "0", "--ingest-log", LOG, env=env, root=job,
    )  # fmt: skip


def test_good_rows_go_in_bad_rows_are_named_and_preprocess_reads_the_result(
    feature_store: dict[str, str], tmp_path: Path
) -> None:
    # Given 6 synthetic images and a CSV with 3 bad rows among them
    data = tmp_path / "data"
    made = container("detector.synth", "--output", str(data), "--count", "6", env=feature_store)
    assert made.returncode == 0, made.stderr
    rows = list(csv.DictReader((data / "labels.csv").open()))
    rows[1]["annotations"] = json.dumps(json.loads(rows[1]["annotations"])).replace('"', "'")  # Python-literal form
    bad = [
        {**rows[0], "source_ref": "images/nowhere.jpg"},
        {**rows[2], "annotations": "[{'class_id': 0, 'top'"},
        {**rows[3], "status": "PENDING"},
    ]
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([rows[0], bad[0], rows[1], bad[1], rows[2], bad[2], rows[3], rows[4], rows[5]])

    # When ingest runs, waiting for the offline store
    result = container(
        "detector.ingest", "--labels", str(labels), "--images", str(data), "--bucket", BUCKET,
        "--feature-group", GROUP, "--report", str(tmp_path / "ingest.json"), "--ingest-log", LOG,
        "--wait-offline", "60", env=feature_store,
    )  # fmt: skip

    # Then the three bad rows are named by row number and reason, and the six good ones went in
    assert result.returncode == 1, result.stderr
    assert "offline store: 6 of 6 records written" in result.stdout
    refused = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert refused == [
        f"row 3 (images/nowhere.jpg): image {data / 'images/nowhere.jpg'} not found",
        f"row 5 ({rows[2]['source_ref']}): annotations: neither JSON nor a Python literal (SyntaxError)",
        f"row 7 ({rows[3]['source_ref']}): status: expected one of APPROVED, REJECTED, got 'PENDING'",
    ]
    assert json.loads((tmp_path / "ingest.json").read_text())["ingested"] == 6
    s3 = boto3.client("s3")
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="images/")["Contents"]}
    assert keys == {f"images/{row['source_ref']}" for row in rows}
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=feature_store[ENDPOINT_ENV])
    uri = f"s3://{BUCKET}/images/{rows[1]['source_ref']}"
    record = {
        f["FeatureName"]: f["ValueAsString"]
        for f in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=uri)["Record"]
    }
    assert json.loads(record["annotations"]) == json.loads(rows[1]["annotations"].replace("'", '"'))  # stored as JSON

    # When preprocess runs on that offline store (images fetched from S3)
    processed = preprocessed(feature_store, tmp_path / "job")

    # Then the offline store holds one parquet row per record, in AWS's partition layout
    store = tmp_path / "job" / "processing" / "input" / "offline-store"
    files = list(store.rglob("*.parquet"))
    assert all(file.relative_to(store).as_posix().startswith("year=") for file in files)
    tables = [pq.read_table(file) for file in files]
    assert sum(table.num_rows for table in tables) == 6
    assert {"write_time", "api_invocation_time", "is_deleted", "source_ref", "image_width"} <= set(
        tables[0].column_names
    )
    # And all six images are packed, none missing from the offline store
    assert processed.returncode == 0, processed.stderr
    report = json.loads((tmp_path / "job/processing/output/report/dataset_report.json").read_text())
    assert report["images"] == 6
    assert report["dropped"] == []
    assert report["not_in_offline_store"] == {"ingest_log": LOG, "approved_records": 0, "source_refs": []}


def test_ingest_that_waits_past_its_limit_names_what_the_offline_store_lacks(
    lagging: tuple[dict[str, str], FeatureStore], tmp_path: Path
) -> None:
    # Given a store ten minutes behind
    env, _ = lagging
    synthesized(tmp_path / "data", env, count=3)

    # When ingest waits two seconds for it
    result = ingested(tmp_path / "data", env, wait=2)

    # Then it exits 3, naming the records missing and AWS's documented delay, having said how many it saw
    assert result.returncode == 3, result.stderr
    assert "offline store: 0 of 3 records written" in result.stdout
    assert "does not hold 3 of the 3 records put after 2 s: s3://scratch-data/images/images/synth-7-0000" in (
        result.stderr
    )
    assert "documented as within 15 minutes" in result.stderr


def test_a_run_started_before_the_offline_store_holds_an_ingest_reports_its_approved_records_missing(
    lagging: tuple[dict[str, str], FeatureStore], tmp_path: Path
) -> None:
    # Given four records that reached the offline store, then two more that have not (the store lags)
    env, store = lagging
    synthesized(tmp_path / "first", env, count=4)
    assert ingested(tmp_path / "first", env, wait=0).returncode == 0
    store.flush()
    later = synthesized(tmp_path / "later", env, count=2, seed=8)
    assert ingested(tmp_path / "later", env, wait=0).returncode == 0

    # When preprocess runs now
    processed = preprocessed(env, tmp_path / "job")

    # Then it packs the four, and its report counts and names the two approved records not there yet
    assert processed.returncode == 0, processed.stderr
    report = json.loads((tmp_path / "job/processing/output/report/dataset_report.json").read_text())
    assert report["images"] == 4
    assert report["not_in_offline_store"] == {
        "ingest_log": LOG,
        "approved_records": 2,
        "source_refs": sorted(f"s3://{BUCKET}/images/{row['source_ref']}" for row in later),
    }


def test_unknown_feature_group_is_reported_per_row(feature_store: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert container("detector.synth", "--output", str(data), "--count", "2", env=feature_store).returncode == 0
    result = container(
        "detector.ingest",
        "--labels",
        str(data / "labels.csv"),
        "--bucket",
        BUCKET,
        "--feature-group",
        "nope",
        env=feature_store,
    )
    assert result.returncode == 1
    assert "row 2 (images/synth-7-00000.jpg): ResourceNotFound: Feature group nope not found" in result.stderr


def test_a_csv_without_the_feature_columns_is_refused_whole(feature_store: dict[str, str], tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,boxes\na.jpg,[]\n")
    result = container(
        "detector.ingest", "--labels", str(labels), "--bucket", BUCKET, "--feature-group", GROUP, env=feature_store
    )
    assert result.returncode == 2
    assert "missing columns source_ref, image_width" in result.stderr


def test_make_ingest_puts_a_folder_into_the_deployed_stacks_bucket_and_feature_group(
    feature_store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack (its outputs name the bucket and the group; it has no config yet) and a labelled folder
    env = environment("dev")
    deployed_stack("dev", config=None)
    data = tmp_path / "metal"
    assert container("detector.synth", "--output", str(data), "--count", "4", env=feature_store).returncode == 0
    monkeypatch.setenv(ENDPOINT_ENV, feature_store[ENDPOINT_ENV])
    session = boto3.Session(region_name="us-east-1")

    # When `make ingest ENV=dev DATASET=metal` runs
    code = ingest(env, session, data)

    # Then the images are under datasets/metal/ (which the pipeline's role reads) and each has its record
    assert code == 0
    # and it waited for the offline store, saying so, and kept the list of what it put for the runs
    assert "offline store: 4 of 4 records written" in capfd.readouterr().out
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="ingest-log/scratch-labels/")["KeyCount"] == 1
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="datasets/metal/")["Contents"]
    rows = list(csv.DictReader((data / "labels.csv").open()))
    assert {item["Key"] for item in listed} == {f"datasets/metal/{row['source_ref']}" for row in rows}
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=feature_store[ENDPOINT_ENV])
    uri = f"s3://{BUCKET}/datasets/metal/{rows[0]['source_ref']}"
    assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=uri)["Record"]


def test_make_ingest_refuses_before_writing_anything(feature_store: dict[str, str], tmp_path: Path) -> None:
    env, session = environment("dev"), boto3.Session(region_name="us-east-1")
    (tmp_path / "labels.csv").write_text("source_ref\n")

    with pytest.raises(RolloutError, match=r"nowhere: no such file or folder"):
        ingest(env, session, tmp_path / "nowhere")
    with pytest.raises(RolloutError, match=r"scratch-detector-dev is not deployed .*make deploy ENV=dev"):
        ingest(env, session, tmp_path)

    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)


def deployed_stack(env_name: str, *, config: str | None) -> None:
    """A deployed stack as ingest sees it: its outputs name the bucket, the group and the config parameter, which
    holds `config` (None: a stack created without an image, which has no config parameter yet)."""
    env = environment(env_name)
    outputs = {
        "FeatureGroupName": GROUP,
        "ArtifactBucketName": BUCKET,
        "ConfigParameterName": f"/{env.stack_name}/pipeline-config",
    }
    if config is not None:
        boto3.client("ssm").put_parameter(Name=outputs["ConfigParameterName"], Value=config, Type="String")
    boto3.client("cloudformation").create_stack(
        StackName=env.stack_name,
        TemplateBody=json.dumps({
            "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }),
    )  # fmt: skip


def groundtruth_line(row: dict[str, str], *, class_ids: list[int]) -> dict[str, object]:
    """A Ground Truth bounding-box output line for a synthetic row, its label attribute the job's own name."""
    boxes = json.loads(row["annotations"])
    annotations = [{**{k: b[k] for k in ("left", "top", "width", "height")}, "class_id": c}
                   for b, c in zip(boxes, class_ids, strict=True)]  # fmt: skip
    return {
        "source-ref": f"s3://labeling-input/{row['source_ref']}",
        "scratch-boxes": {"image_size": [{"width": int(row["image_width"]), "height": int(row["image_height"]),
                                          "depth": 3}], "annotations": annotations},
        "scratch-boxes-metadata": {"class-map": {"0": "scratch", "1": "dent", "2": "rust"},
                                   "type": "groundtruth/object-detection", "human-annotated": "yes",
                                   "creation-date": "2026-11-30T08:15:00.250000",
                                   "job-name": "labeling-job/scratches-7",
                                   "objects": [{"confidence": 0.9} for _ in annotations]},
    }  # fmt: skip


def test_make_ingest_reads_a_ground_truth_manifest_with_the_deployed_configs_classes(
    feature_store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose deployed config has the classes scratch and dent
    config = DEFAULT_CONFIG_PATH.read_text().replace("classes: [scratch]", "classes: [scratch, dent]")
    assert "classes: [scratch, dent]" in config
    deployed_stack("dev", config=config)
    # and a labeling job's output manifest over 3 synthetic images (synced from its bucket into the folder): one box
    # of the first is a dent, one of the third is rust (not a class of the config)
    data = tmp_path / "job"
    rows = synthesized(data, feature_store, count=3)
    counts = [len(json.loads(row["annotations"])) for row in rows]
    class_ids = [[1] + [0] * (counts[0] - 1), [0] * counts[1], [2] + [0] * (counts[2] - 1)]
    lines = [groundtruth_line(row, class_ids=ids) for row, ids in zip(rows, class_ids, strict=True)]
    manifest = data / "manifests" / "output" / "output.manifest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (data / "labels.csv").unlink()  # the folder holds the manifest alone: its format is detected
    monkeypatch.setenv(ENDPOINT_ENV, feature_store[ENDPOINT_ENV])

    # When `make ingest DATASET=job` runs
    code = ingest(environment("dev"), boto3.Session(region_name="us-east-1"), data)

    # Then the rust box is named (file, line, box) and its image refused; the other two went in
    assert code == 1
    out, err = capfd.readouterr()
    refused = "output.manifest line 3 box 0 (s3://labeling-input/images/synth-7-00002.jpg): class 'rust' is not one"
    assert f"{refused} of the config's classes (scratch, dent)" in err
    assert "offline store: 2 of 2 records written" in out
    # with the dent as the config's class 1, the job's name and its creation date
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=feature_store[ENDPOINT_ENV])
    uri = f"s3://{BUCKET}/datasets/job/{rows[0]['source_ref']}"
    record = {
        f["FeatureName"]: f["ValueAsString"]
        for f in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=uri)["Record"]
    }
    assert [box["class_id"] for box in json.loads(record["annotations"])] == class_ids[0]
    assert [{k: b[k] for k in ("left", "top", "width", "height")} for b in json.loads(record["annotations"])] == [
        {k: b[k] for k in ("left", "top", "width", "height")} for b in json.loads(rows[0]["annotations"])
    ]
    assert record["labeling_job"] == "labeling-job/scratches-7"
    assert float(record["event_time"]) == datetime(2026, 11, 30, 8, 15, 0, 250000, tzinfo=UTC).timestamp()
    assert record["status"] == "APPROVED"
    missing = f"s3://{BUCKET}/datasets/job/{rows[2]['source_ref']}"
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=missing)


def test_make_ingest_refuses_a_deployed_config_that_is_not_valid(feature_store: dict[str, str], tmp_path: Path) -> None:
    # Given a stack whose config parameter holds text that is no config
    deployed_stack("dev", config="classes: []\n")
    (tmp_path / "labels.csv").write_text("source_ref\n")

    # When make ingest runs, Then it refuses before writing anything, saying why
    invalid = r"(?s)the deployed config is not valid: .*classes: List should have at least 1 item"
    with pytest.raises(RolloutError, match=invalid):
        ingest(environment("dev"), boto3.Session(region_name="us-east-1"), tmp_path)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)
