"""`make bench-serve`: the image's `serve` (gunicorn, one sync worker per core) against the model's bare forward loop.

One run, the same model, shape and images for both:
- floor: the exported model (symbol + params, NMS baked in) loaded in this one process with all the cores'
  OpenMP threads, `net(x)` on images already decoded and resized: images/s, and the forward's own p50;
- serve: `container/bin/serve` on a loopback port as SageMaker starts it, JPEG bodies through POST /invocations
  from 1 and 4 concurrent clients: images/s and p50/p99 latency (decode, resize, forward, JSON and HTTP).
Targets: at concurrency 4, >= 0.8x the floor's images/s; per-request overhead under 15 ms: serve's p50 at
concurrency 1 minus the bare forward's p50 at a worker's threads (serve gives each of its workers an equal
share of the cores, so one request runs on one share: the floor loop is timed again in a process with those
threads). The model is a freshly initialised one (speed does not depend on its weights), exported at the
config's default backbone and shape.

    make bench-serve [REQUESTS=80]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.container import jobs

sys.path.insert(0, str(jobs.CONTAINER))
from detector import jobs as detector_jobs

detector_jobs.cpu_threads()  # before mxnet is imported: the floor gets every core

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from detector import model, synth, transforms  # noqa: E402

WORK = jobs.REPO / "work" / "bench-serve"
TARGET_RATIO, TARGET_OVERHEAD_MS = 0.8, 15.0


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def export_model(folder: Path, backbone: str, *, width: int, height: int) -> None:
    net = model.build(backbone, ("scratch",))
    meta = {"backbone": backbone, "classes": ["scratch"], "data_width": width, "data_height": height, "epochs": 0}
    model.export(net, folder, meta, width=width, height=height)


def floor(folder: Path, images: list[bytes], rounds: int) -> tuple[float, float]:
    """Images/s and the forward's p50 (ms) of the bare loop on pre-decoded, pre-resized images."""
    net, meta = model.load_exported(folder)
    width, height = int(meta["data_width"]), int(meta["data_height"])
    transform = transforms.val_transform(width, height)
    tensors = [transform(mx.image.imdecode(data), np.zeros((0, 5)))[0].expand_dims(0) for data in images]
    net.hybridize(static_alloc=True, static_shape=True)
    for tensor in tensors[:4]:
        net(tensor)[0].wait_to_read()
    times = []
    started = time.perf_counter()
    for index in range(rounds):
        tick = time.perf_counter()
        ids, _, _ = net(tensors[index % len(tensors)])
        ids.wait_to_read()
        times.append((time.perf_counter() - tick) * 1000)
    return rounds / (time.perf_counter() - started), statistics.median(times)


def floor_at(threads: int, rounds: int) -> float:
    """The bare forward's p50 (ms) in a fresh process with `threads` OpenMP threads (set before MXNet loads)."""
    environment = {**jobs.environment(WORK), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.container.serve", "--forward-only", "--requests", str(rounds)],
        env={**environment, "PYTHONPATH": f"{jobs.REPO}{os.pathsep}{jobs.CONTAINER}"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = {
        **jobs.environment(root),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    environment.pop("OMP_NUM_THREADS", None)  # serve divides the cores among its workers itself
    process = subprocess.Popen([str(jobs.CONTAINER / "bin" / "serve")], env=environment, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("serve did not answer /ping within 120 s")


def invoke(url: str, data: bytes) -> float:
    request = urllib.request.Request(
        f"{url}/invocations", data=data, headers={"Content-Type": "image/jpeg"}, method="POST"
    )
    tick = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
        assert answer.status == 200
    return (time.perf_counter() - tick) * 1000


def load(url: str, images: list[bytes], *, requests: int, concurrency: int) -> tuple[float, list[float]]:
    for data in images[:concurrency]:
        invoke(url, data)  # every worker warm
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda i: invoke(url, images[i % len(images)]), range(requests)))
    return requests / (time.perf_counter() - started), latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=80, help="invocations per concurrency level")
    parser.add_argument("--backbone", default="mobilenet0.25")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)  # floor_at's child
    args = parser.parse_args()
    if args.forward_only:
        images = [p.read_bytes() for p in sorted((WORK / "images" / "images").glob("*.jpg"))]
        print(floor(WORK / "model", images, args.requests)[1])
        return 0
    shutil.rmtree(WORK, ignore_errors=True)
    synth.generate(WORK / "images", 16, seed=5)
    images = [p.read_bytes() for p in sorted((WORK / "images" / "images").glob("*.jpg"))]
    export_model(WORK / "model", args.backbone, width=args.width, height=args.height)

    floor_rate, forward_ms = floor(WORK / "model", images, args.requests)
    cores = os.cpu_count() or 1
    workers = cores  # serve's default: one per core
    share = max(1, cores // workers)
    worker_forward_ms = floor_at(share, args.requests)
    process, url = start_serve(WORK)
    try:
        results = {c: load(url, images, requests=args.requests, concurrency=c) for c in (1, 4)}
    finally:
        process.terminate()
        process.wait(timeout=60)
    shape = f"{args.backbone} at {args.width}x{args.height}"
    print(f"model: {shape}, {len(images)} JPEGs of {synth.WIDTH}x{synth.HEIGHT}, {cores} cores, {workers} workers")
    loop = f"bare forward loop, one process, {cores} threads"
    print(f"baseline ({loop}): {floor_rate:.1f} images/s, p50 {forward_ms:.1f} ms")
    print(f"baseline (bare forward loop at a worker's {share} thread(s)): p50 {worker_forward_ms:.1f} ms")
    failed = False
    for concurrency, (rate, latencies) in results.items():
        p50, p99 = statistics.median(latencies), percentile(latencies, 99)
        print(
            f"serve, concurrency {concurrency}: {rate:.1f} images/s ({rate / floor_rate:.2f}x the floor), "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
    overhead = statistics.median(results[1][1]) - worker_forward_ms
    ratio = results[4][0] / floor_rate
    print(
        f"per-request overhead at concurrency 1: {overhead:.1f} ms over the forward at a worker's threads "
        f"(target < {TARGET_OVERHEAD_MS:.0f} ms; {statistics.median(results[1][1]) - forward_ms:.1f} ms over the "
        f"{cores}-thread forward)"
    )
    print(f"images/s at concurrency 4: {ratio:.2f}x the floor (target >= {TARGET_RATIO})")
    if overhead >= TARGET_OVERHEAD_MS or ratio < TARGET_RATIO:
        print("OVER TARGET")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
