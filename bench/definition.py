"""`make bench-definition`: config text -> validated config -> definition JSON, against the SageMaker SDK.

Baseline: the SDK v3 building the same pipeline (bench/sdk_baseline.py) and calling `Pipeline.definition()`.
Both are measured in this run, on this machine: warm (median of repeated builds in one process) and cold
(a fresh interpreter importing what it needs and building once, as a Lambda cold start does).
Target: ours at least 20x faster warm, and under 100 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from bench.sdk_baseline import prepare_environment, sdk_definition, without_network
from pipeline_def import PipelineConfig, build_definition
from pipeline_def.config import DEFAULT_CONFIG_PATH

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO, TARGET_MS = 20.0, 100.0


def ours(text: str) -> str:
    return build_definition(PipelineConfig.from_yaml(text))


def warm_ms(build: Callable[[], object], repeats: int) -> float:
    build()  # first call pays for imports and caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        build()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def cold_ms(code: str) -> float:
    """Wall time of a fresh interpreter that imports, validates and builds once (median of 3)."""
    samples = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    prepare_environment()
    without_network()
    # the SDK's telemetry thread meets the socket guard after the build returns: expected, not news
    warnings.filterwarnings("ignore", message="A test tried to use socket", category=UserWarning)
    text = DEFAULT_CONFIG_PATH.read_text()
    config = PipelineConfig.from_yaml(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import logging

        logging.disable(logging.WARNING)
        assert json.loads(ours(text))["Steps"][0]["Name"] == json.loads(sdk_definition(config))["Steps"][0]["Name"]
        ours_warm = warm_ms(lambda: ours(text), repeats=200)
        sdk_warm = warm_ms(lambda: sdk_definition(config), repeats=15)

    load = "from pipeline_def import PipelineConfig; c = PipelineConfig.from_file(); "
    ours_cold = cold_ms(load + "from pipeline_def import build_definition; build_definition(c)")
    sdk_cold = cold_ms(
        "import logging, warnings; warnings.simplefilter('ignore'); logging.disable(logging.WARNING); "
        + load
        + "from bench.sdk_baseline import sdk_definition, without_network; without_network(); sdk_definition(c)"
    )

    ratio = sdk_warm / ours_warm
    print("definition build (config text -> validated config -> JSON), this machine, this run")
    print(f"  ours, warm (median of 200): {ours_warm:8.2f} ms")
    print(f"  SDK definition(), warm (median of 15): {sdk_warm:8.2f} ms")
    print(f"  ratio SDK / ours, warm: {ratio:.1f}x   (target >= {TARGET_RATIO:.0f}x, ours < {TARGET_MS:.0f} ms)")
    print(f"  cold start (fresh interpreter, imports + one build): ours {ours_cold:.0f} ms, SDK {sdk_cold:.0f} ms")
    print(f"  ratio SDK / ours, cold: {sdk_cold / ours_cold:.1f}x")
    met = ratio >= TARGET_RATIO and ours_warm < TARGET_MS
    print("  target met" if met else "  TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
