"""`serve` as SageMaker hosting starts it: the real process (container/bin/serve, gunicorn) on a loopback port,
the tiny trained model in /opt/ml/model; and `python -m detector.predict` on the same model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from sam_stack.container import container_environment
from tests.conftest import CONTAINER, JobResult, labels

ALL = "score_threshold=0"  # the tiny model's scores are low: every box it finds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(trained: JobResult) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`serve` with two workers, started as SageMaker starts it (the model in the root's model/ folder)."""
    port = free_port()
    environment = container_environment(
        {},
        {
            "OPT_ML_ROOT": str(trained.root),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    process = subprocess.Popen(
        [str(CONTAINER / "bin" / "serve")], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if call(f"{url}/ping")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "serve did not answer /ping"
        time.sleep(0.3)
    yield url, process
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def jpeg(synthetic: Path) -> bytes:
    return (synthetic / labels(synthetic)[0]["source_ref"]).read_bytes()


def evaluate_way(trained: JobResult, data: bytes) -> tuple[list[list[float]], list[float]]:
    """Boxes (original pixels) and scores as detector.evaluate computes them for the image, every score kept."""
    import mxnet as mx
    from detector import model, transforms

    net, meta = model.load_exported(trained.root / "model")
    width, height = int(meta["data_width"]), int(meta["data_height"])
    image = mx.image.imdecode(data)
    tensor, _ = transforms.val_transform(width, height)(image, np.zeros((0, 5)))
    ids, scores, boxes = net(tensor.expand_dims(0))
    boxes = model.clip_boxes(boxes, width, height).asnumpy()[0]
    keep = ids.asnumpy()[0, :, 0] >= 0
    scale = np.array([image.shape[1] / width, image.shape[0] / height] * 2)
    return (boxes[keep] * scale).tolist(), scores.asnumpy()[0, keep, 0].tolist()


def test_ping_and_batch_transforms_parameters(server: tuple[str, Any]) -> None:
    url, _ = server
    assert call(f"{url}/ping") == (200, {"status": "healthy"})
    status, parameters = call(f"{url}/execution-parameters")
    assert (status, parameters) == (
        200,
        {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 6},
    )


@pytest.mark.parametrize("kind", ["image/jpeg", "image/png", "application/x-image"])
def test_an_image_gets_the_detections_evaluate_finds_in_its_own_pixels(
    server: tuple[str, Any], trained: JobResult, jpeg: bytes, kind: str
) -> None:
    url, _ = server
    # the PNG holds the JPEG's decoded pixels: the same image, so the same detections
    body = (
        jpeg
        if kind != "image/png"
        else cv2.imencode(".png", cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1))[1].tobytes()
    )
    headers = {"Content-Type": kind, "X-Amzn-SageMaker-Custom-Attributes": ALL}

    status, answer = call(f"{url}/invocations", "POST", body, headers)

    assert status == 200, answer
    expected_boxes, expected_scores = evaluate_way(trained, jpeg)
    assert [d["box"] for d in answer["detections"]] == pytest.approx(expected_boxes, abs=0.01)
    assert [d["score"] for d in answer["detections"]] == pytest.approx(expected_scores, abs=1e-4)
    assert {d["class"] for d in answer["detections"]} <= {"scratch"}
    height, width = cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape[:2]
    assert answer["image"] == {"width": width, "height": height}
    assert answer["score_threshold"] == 0
    assert (answer["model"]["backbone"], answer["model"]["data_width"]) == ("mobilenet0.25", 96)
    meta = json.loads((trained.root / "model" / "model-meta.json").read_text())
    assert (answer["model"]["nms_threshold"], answer["model"]["nms_threshold_source"]) == (
        meta["nms_threshold"], meta["nms_threshold_source"]
    )  # fmt: skip


def test_a_model_exported_before_the_nms_choice_answers_with_gluoncvs_045(
    trained: JobResult, jpeg: bytes, tmp_path: Path
) -> None:
    from detector import nms
    from detector.inference import Predictor

    from tests.test_evaluate import without_nms_threshold

    old = without_nms_threshold(trained, tmp_path / "old")

    answer = Predictor(old).answer(jpeg, 0.0)

    assert (answer["model"]["nms_threshold"], answer["model"]["nms_threshold_source"]) == (0.45, nms.BAKED_IN)
    assert answer["detections"] == Predictor(trained.root / "model").answer(jpeg, 0.0)["detections"]


def test_the_threshold_defaults_to_the_models_and_a_request_can_set_it(server: tuple[str, Any], jpeg: bytes) -> None:
    url, _ = server

    default = call(f"{url}/invocations", "POST", jpeg, {"Content-Type": "image/jpeg"})[1]
    attributes = {"X-Amzn-SageMaker-Custom-Attributes": "a=b; score_threshold=1"}
    none = call(f"{url}/invocations", "POST", jpeg, {"Content-Type": "image/jpeg", **attributes})[1]

    assert default["score_threshold"] == 0.5
    assert all(d["score"] >= 0.5 for d in default["detections"])
    assert (none["score_threshold"], none["detections"]) == (1, [])


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"hello", {"Content-Type": "text/plain"}, 415, "Content-Type text/plain is not one of"),
        (b'{"image": "x"}', {"Content-Type": "application/json"}, 415, "Content-Type application/json is not"),
        (b"not an image at all", {"Content-Type": "image/jpeg"}, 400, "not a decodable image"),
        (b"", {"Content-Type": "image/jpeg"}, 400, "the body is empty"),
        (None, {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "score_threshold=high"}, 400,
         "score_threshold: 'high' is not a number"),
        (None, {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "score_threshold=2"}, 400,
         "'2' is not between 0 and 1"),
        (b"x" * (6 * 1024 * 1024 + 1), {"Content-Type": "image/jpeg"}, 413, "at most 6 MB"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_that_says_why_and_the_server_goes_on(
    server: tuple[str, Any], jpeg: bytes, body: bytes | None, headers: dict[str, str], status: int, says: str
) -> None:
    url, _ = server

    answer = call(f"{url}/invocations", "POST", jpeg if body is None else body, headers)

    assert answer[0] == status
    assert says in answer[1]["error"]
    assert call(f"{url}/invocations", "POST", jpeg, {"Content-Type": "image/jpeg"})[0] == 200


def test_a_truncated_image_is_a_400_and_unknown_routes_are_404(server: tuple[str, Any], jpeg: bytes) -> None:
    url, _ = server
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1))[1].tobytes()

    for body, kind in ((jpeg[: len(jpeg) // 2], "image/jpeg"), (png[: len(png) // 2], "image/png")):
        status, answer = call(f"{url}/invocations", "POST", body, {"Content-Type": kind})
        assert (status, "truncated" in answer["error"]) == (400, True), answer
    assert call(f"{url}/models")[0] == 404
    assert call(f"{url}/invocations")[0] == 405
    assert call(f"{url}/ping")[0] == 200


def test_predict_gives_what_serve_answers_and_draws_it(
    server: tuple[str, Any], trained: JobResult, synthetic: Path, jpeg: bytes, tmp_path: Path
) -> None:
    url, _ = server
    image = synthetic / labels(synthetic)[0]["source_ref"]

    command = [sys.executable, "-m", "detector.predict", str(trained.root / "model"), str(image)]
    done = subprocess.run(
        [*command, "--output", str(tmp_path), "--score-threshold", "0"],
        env=container_environment({}), capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.strip().splitlines()
    printed = json.loads(line)
    headers = {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": ALL}
    served = call(f"{url}/invocations", "POST", jpeg, headers)[1]
    assert printed["detections"] == served["detections"]
    assert printed["model"] == served["model"]
    assert Path(printed["picture"]).stat().st_size > 1000


def test_sigterm_stops_serve_gracefully(server: tuple[str, subprocess.Popen[str]]) -> None:
    _, process = server

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 0
