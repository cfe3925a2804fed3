"""`make run`: a labelled dataset in, an approved model out, on the local stack, through the real handlers.

Steps: start the stack; generate the synthetic dataset (or take DATASET) and ingest it into S3 and the feature
group; the deployment's custom resource has built the pipeline; `POST /runs` over HTTP; follow the run (steps,
epochs, loss, validation mAP); wait for the notify function's Slack message; press Approve through the signed
Slack route and wait for the decision worker; deploy the approved model (`POST /models/{version}/deploy`: the
image's serve behind the local endpoint), send one held-out image through InvokeEndpoint and draw what it
found; print the summary. A failed run exits 1 naming the failing step and its reason.

The model a make run approves is kept in work/run-champion/ and registered (approved) again by the next make run,
whose evaluation scores it beside the new model on the same test images: the summary prints the comparison.
Remove the folder to start with an empty registry.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from local import drive
from local.emulator import REGION
from local.executor.jobs import Job
from local.stack import (
    FEATURE_GROUP,
    LOCAL_DEPLOYER_KEY,
    LOCAL_RUNNER_KEY,
    REPO,
    SLACK_APPROVER,
    LocalStack,
)
from local.template import ACCOUNT
from pipeline_def import metrics
from sam_stack.client import Api
from scratch_cli import show

RUN_WORK = REPO / "work" / "run"
# the model the last `make run` approved: the next one starts with it in the registry, as its champion
CHAMPION_WORK = REPO / "work" / "run-champion"
CHAMPION_PREFIX = "earlier-make-run"
MANIFEST = "manifest.jsonl"
# The built-in defaults: 960 bold synthetic images, 19 epochs at 192x128 at a learning rate of 0.004 after 2
# warm-up epochs, IgnoreIou 0.5; the config's recipe otherwise (AnchorMatchIou 0.3). Measured on data seed 7:
# - the bold scratches stay visible at 192x128 and a model from scratch lacks updates more than pixels: 224x160
#   for 20 epochs scored a test mAP of 0.761 (recall 0.71) where 192x128 for 26 scored 0.743 (0.77)
# - more images for fewer epochs, about as many updates: 480 images for 26 epochs 0.743, 720 for 18 0.795, 960
#   for 14 0.807; a test split of ~145 images (~300 scratches) also varies less than one of 72
# - IgnoreIou 0.5 instead of GluonCV's 0.7 (the predictions along a thin scratch that overlap it well stop being
#   negatives): 960 for 14 epochs went from 0.807 (recall 0.71) to 0.834 (0.78); 0.3 scored 0.817
# - 18 epochs instead of 14: 0.870 (recall 0.84) in 7.2 minutes in all, on a day of 34-37 training images/s;
#   19 gave 0.866 (recall 0.82) and lifted SEED=2 from recall 0.795 to 0.821, in 5.6-5.7 minutes at 40+
# - earlier: AnchorMatchIou 0.3 over GluonCV's best-anchor rule raised make run's three seeds by 0.03-0.11; 2
#   warm-up epochs of 960 images are as many updates as the 4 of 480 that stopped the default seed diverging
DEFAULT_IMAGES = 960
DEFAULT_PARAMETERS: dict[str, Any] = {
    "NumEpochs": 19,
    "DataWidth": 192,
    "DataHeight": 128,
    "LearningRate": 0.004,
    "WarmupEpochs": 2,
    "IgnoreIou": 0.5,
}
DATA_SEED = 7  # detector.synth's default


@dataclass
class Progress:
    """Prints step changes and one line per training epoch, as they happen (to the terminal: the functions'
    own logs go to a file)."""

    started: float = field(default_factory=time.monotonic)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    # epoch lines seen per training job, for the mean epoch time
    epochs_seen: dict[str, int] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.0f}s] {text}", file=self.out, flush=True)

    def job_line(self, job: Job, line: str) -> None:
        fields = metrics.epoch_fields(line)
        if fields is None:
            return
        # the mean epoch time of this job so far: its time since it started over the epoch lines it has logged
        seen = self.epochs_seen[job.name] = self.epochs_seen.get(job.name, 0) + 1
        elapsed = (datetime.now(UTC) - job.started).total_seconds() if job.started else None
        total = job.request.get("HyperParameters", {}).get("epochs")
        line_text = metrics.epoch_progress(
            fields,
            total=int(total) if str(total or "").isdigit() else None,
            seconds_per_epoch=elapsed / seen if elapsed is not None else None,
        )
        self.say(f"  Train  {line_text}")

    def run(self, detail: dict[str, Any]) -> None:
        """A line per step whose status changed, as `scratch-detector runs follow` prints them (the epoch lines come
        from the job's log, above, which the API does not carry)."""
        self.watcher(detail)

    def __post_init__(self) -> None:
        self.watcher = show.Watcher(say=self.say, training_metrics=False)


def prepare_dataset(stack: LocalStack, progress: Progress, *, dataset: Path | None, images: int, seed: int) -> None:
    if dataset is None:
        dataset = stack.work / "dataset"
        shutil.rmtree(dataset, ignore_errors=True)
        progress.say(f"generating {images} synthetic labelled images (seed {seed})")
        drive.synthesize(dataset, count=images, options=("--style", "bold", "--seed", str(seed)))
    progress.say(f"ingesting {dataset} into s3://{stack.bucket}/images and feature group {FEATURE_GROUP}")
    ingested = drive.ingest(stack, dataset, refused_ok=True)
    if ingested.returncode == 1:  # some rows were refused, and named: the run goes on with the others
        print(ingested.stdout.strip(), file=sys.stderr)


def failure(detail: dict[str, Any]) -> str:
    """Where and why a run that did not succeed ended."""
    failed = [s for s in detail["steps"] if s["status"] == "Failed"]
    where = failed[0]["name"] if failed else "the run"
    reason = (failed[0].get("failure_reason") if failed else None) or detail.get("failure_reason")
    return f"Run {detail['run_id']} {detail['status']} at {where}: {reason}"


def approve_in_slack(stack: LocalStack, api: Api, *, version: int, progress: Progress) -> dict[str, Any]:
    """Press Approve on the notify function's message for `version`; the model once the decision worker approved it."""
    message = drive.approval_request(stack, version, timeout=60)
    progress.say(f"Slack: {message['text']}")
    code, answer = drive.press(stack, message, "approve", reply_to="actions/local")
    if code != 200:
        raise SystemExit(f"the Approve click was refused: {code} {answer}")
    approved = drive.model_until(api, version, "Approved")
    progress.say(f"approved through Slack by {SLACK_APPROVER}: {approved['approval_status']}")
    return approved


def deploy_and_invoke(stack: LocalStack, api: Api, *, detail: dict[str, Any], progress: Progress) -> str:
    """Deploy the approved model to the local endpoint, send it one image training never saw, draw the answer."""
    version = detail["model"]["version"]
    status, deploying = api.call("POST", f"/models/{version}/deploy")
    if status != 202:
        raise SystemExit(f"POST /models/{version}/deploy: {status} {deploying}")
    progress.say(f"POST /models/{version}/deploy -> endpoint {deploying['name']} {deploying['status']}")
    state = drive.endpoint_until(api, lambda found: found["status"] in {"InService", "Failed"}, timeout=300)
    if state["status"] == "Failed":
        raise SystemExit(f"the endpoint did not come into service: {state}")
    held_out = stack.work / "held-out"
    shutil.rmtree(held_out, ignore_errors=True)
    drive.synthesize(held_out, count=1, options=("--seed", "9999", "--style", "bold"))
    image = next((held_out / "images").glob("*.jpg"))
    answer = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=state["name"], ContentType="image/jpeg", Body=image.read_bytes()
    )
    found = json.loads(answer["Body"].read())
    boxes = ", ".join(f"{d['class']} {d['score']:.2f} at {[round(v) for v in d['box']]}" for d in found["detections"])
    progress.say(f"InvokeEndpoint {image.name}: {len(found['detections'])} detection(s) {boxes}".rstrip())
    # the same model and code as the endpoint, on this machine, to draw what it found
    train = next(s for s in detail["steps"] if s["name"] == "Train")
    job = stack.executor.jobs[str(train["job_arn"]).rsplit("/", 1)[-1]]
    results = stack.work / "results"
    results.mkdir(parents=True, exist_ok=True)
    threshold = str(found["score_threshold"])
    drive.container("detector.predict", str(job.folder / "model.tar.gz"), str(image), "--output", str(results),
                    "--score-threshold", threshold, env={})  # fmt: skip
    return f"{state['name']} serving v{state['version']} ({results / (image.name + '.detections.png')})"


def make_run(
    stack: LocalStack,
    progress: Progress,
    *,
    dataset: Path | None,
    images: int,
    seed: int,
    parameters: dict[str, Any],
    timeout: float,
) -> int:
    """The job on a started stack: data in, a run, its model approved in Slack, deployed and asked once."""
    champion = restore_champion(stack, CHAMPION_WORK)
    if champion is not None:
        progress.say(f"the registry holds the model an earlier make run approved: v{champion}, the champion")
    # each step as the duty it is (local/iam/users.py): the runner starts and follows the run, the approver
    # decides in Slack, the deployer deploys (model_registry.four_eyes: the runner may not)
    api = drive.api(stack.api.url, LOCAL_RUNNER_KEY)
    progress.say(f"API at {stack.api.url}; pipeline built from the config in SSM")
    prepare_dataset(stack, progress, dataset=dataset, images=images, seed=seed)
    started = drive.start_run(
        api, parameters, key=f"make-run-{int(time.time())}", display_name="make-run", description="make run"
    )
    progress.say(f"POST /runs -> run {started['run_id']} with {started['parameters']}")
    detail = drive.follow(api, started["run_id"], timeout=timeout, every=2, seen=progress.run)
    if detail["status"] != "Succeeded":
        print(f"\n{failure(detail)}", file=progress.out)
        return 1
    approved = approve_in_slack(stack, api, version=detail["model"]["version"], progress=progress)
    keep_champion(stack, approved, CHAMPION_WORK)
    summary(stack, detail, approved, out=progress.out)
    deployer = drive.api(stack.api.url, LOCAL_DEPLOYER_KEY)
    print(f"endpoint       {deploy_and_invoke(stack, deployer, detail=detail, progress=progress)}", file=progress.out)
    return 0


def run(*, dataset: Path | None, images: int, seed: int, parameters: dict[str, Any], timeout: float) -> int:
    progress = Progress()
    progress.say("starting the local stack (moto, executor, feature store, functions, Slack)")
    # a folder of its own, so that `make run` and a stack started with `make up` never share jobs or state
    work = RUN_WORK
    shutil.rmtree(work, ignore_errors=True)
    stack = LocalStack(work=work, persist=False, on_job_line=progress.job_line, function_log=work / "functions.log")
    stack.start()
    progress.say(f"the functions' logs: {work / 'functions.log'}")
    try:
        return make_run(
            stack, progress, dataset=dataset, images=images, seed=seed, parameters=parameters, timeout=timeout
        )
    except drive.DriveError as error:
        raise SystemExit(str(error)) from None
    finally:
        stack.stop()


def keep_champion(stack: LocalStack, model: dict[str, Any], folder: Path) -> None:
    """The approved model's archive and evaluation, for the next make run's registry."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    s3 = stack.aws["s3"]
    evaluation = str(model["evaluation_uri"]).rsplit("/", 1)[0]
    for uri, name in [(model["model_data_url"], "model.tar.gz")] + [
        (f"{evaluation}/{file}", file) for file in ("evaluation.json", "predictions.png", "training_curves.png")
    ]:
        bucket, _, key = str(uri).removeprefix("s3://").partition("/")
        s3.download_file(bucket, key, str(folder / name))
    manifest = model["metadata"].get("DataManifest")
    if manifest:  # the data it learned from: the next make run compares its own data with it
        bucket, _, key = str(manifest).removeprefix("s3://").partition("/")
        s3.download_file(bucket, key, str(folder / MANIFEST))
    (folder / "package.json").write_text(json.dumps({"version": model["version"], "metadata": model["metadata"]}))


def restore_champion(stack: LocalStack, folder: Path) -> int | None:
    """Register and approve the model the last make run approved (its archive, its evaluation, its metadata);
    its version here, or None when there is none."""
    if not (folder / "package.json").is_file():
        return None
    kept = json.loads((folder / "package.json").read_text())
    root = f"s3://{stack.bucket}/{CHAMPION_PREFIX}"
    for file in folder.iterdir():
        if file.name != "package.json":
            stack.aws["s3"].upload_file(str(file), stack.bucket, f"{CHAMPION_PREFIX}/{file.name}")
    metadata = {k: v for k, v in kept["metadata"].items() if k != "PipelineExecutionArn"}
    if (folder / MANIFEST).is_file() and "DataManifest" in metadata:
        metadata["DataManifest"] = f"{root}/{MANIFEST}"  # the same bytes (DataManifestSha256), in this stack
    sagemaker = stack.aws["sagemaker"]
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{stack.values['ImageRepository']}:latest"
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=stack.group,
        ModelPackageDescription=f"the model make run approved as v{kept['version']}, registered again",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": f"{root}/model.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                        "S3Uri": f"{root}/evaluation.json"}}},
        CustomerMetadataProperties=metadata,
    )["ModelPackageArn"]  # fmt: skip
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="approved in an earlier make run"
    )
    return int(sagemaker.describe_model_package(ModelPackageName=arn)["ModelPackageVersion"])


def summary(stack: LocalStack, detail: dict[str, Any], model: dict[str, Any], *, out: TextIO) -> None:
    results = stack.work / "results"
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    pictures = []
    for step in detail["steps"]:
        job = stack.executor.jobs.get(str(step.get("job_arn", "")).rsplit("/", 1)[-1])
        if job is None:
            continue
        for picture in sorted(job.folder.rglob("*.png")):
            target = results / picture.name
            if target in pictures:  # Evaluate keeps a copy of the model's training curves
                continue
            shutil.copyfile(picture, target)
            pictures.append(target)
    evaluation = detail.get("evaluation") or {}
    test_map = evaluation.get("metrics", {}).get("map", {}).get("value")
    print(file=out)
    print(f"run            {detail['run_id']} ({detail['status']})", file=out)
    print(f"test mAP@0.5   {test_map:.3f}" if test_map is not None else "test mAP@0.5   unknown", file=out)
    counted = counting_line(evaluation)
    if counted:
        print(counted, file=out)
    champion = evaluation.get("champion") or {}
    if champion.get("present"):
        difference = float(evaluation["comparison"]["map_difference"])
        print(
            f"champion       v{champion['version']} (approved earlier): test mAP {float(champion['map']):.3f} on the "
            f"same images, precision {float(champion['precision']):.3f}, recall {float(champion['recall']):.3f}; "
            f"this model {difference:+.3f}",
            file=out,
        )
    else:
        print(f"champion       none ({champion.get('reason', 'not evaluated')})", file=out)
    for line in data_lines(detail):
        print(line, file=out)
    print(f"model package  {model['arn']}", file=out)
    print(f"approval       {model['approval_status']}: {model.get('approval_description')}", file=out)
    print(f"model          {model.get('model_data_url')}", file=out)
    print(f"evaluation     {model.get('evaluation_uri')}", file=out)
    for picture in pictures:
        print(
            f"picture        {picture.relative_to(Path.cwd()) if picture.is_relative_to(Path.cwd()) else picture}",
            file=out,
        )
    print(f"job folders    {stack.work / 'jobs'}", file=out)


def counting_line(evaluation: dict[str, Any]) -> str | None:
    """Precision and recall at the model's score threshold, with the NMS threshold baked into it (when the
    evaluation names one), or None when nothing was counted."""
    counts = list(evaluation.get("per_class", {}).values())
    if not counts:
        return None
    hits = sum(c["true_positives"] for c in counts)
    detected, boxes = hits + sum(c["false_positives"] for c in counts), sum(c["boxes"] for c in counts)
    nms = evaluation.get("nms_threshold")
    baked = "" if nms is None else f", NMS IoU {nms} ({evaluation.get('nms_threshold_source')})"
    return (
        f"at score {evaluation.get('score_threshold')} ({evaluation.get('score_threshold_source')}){baked}: "
        f"precision {hits / detected if detected else 0:.3f}, recall {hits / boxes if boxes else 0:.3f} "
        f"({hits} of {boxes} scratches found, {detected - hits} false detections)"
    )


def data_lines(detail: dict[str, Any]) -> list[str]:
    """The data the run learned from (as of when, its manifest) and what changed in it since the champion."""
    dataset, changes = detail.get("dataset") or {}, detail.get("data_changes") or {}
    lines = []
    if dataset.get("as_of"):
        lines.append(
            f"data           as of {dataset['as_of']}, {dataset.get('images')} images, "
            f"manifest sha256 {str(dataset.get('manifest_sha256'))[:16]}"
        )
    if changes.get("summary"):
        lines.append(f"               {changes['summary']}")
    return lines


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m local run", description=__doc__)
    parser.add_argument("--dataset", type=Path, default=None, help="a folder laid out like metal-tags (labels.csv)")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="synthetic images when no --dataset")
    parser.add_argument("--epochs", type=int, default=DEFAULT_PARAMETERS["NumEpochs"])
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the synthetic images' and the training's seed (default: 7 and the config's)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the run")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", help="another run-time override (JSON value)"
    )
    args = parser.parse_args(argv)
    parameters = {**DEFAULT_PARAMETERS, "NumEpochs": args.epochs}
    if args.seed is not None:
        parameters["Seed"] = args.seed
    for item in args.parameter:
        name, _, value = item.partition("=")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    seed = DATA_SEED if args.seed is None else args.seed
    return run(dataset=args.dataset, images=args.images, seed=seed, parameters=parameters, timeout=args.timeout)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
