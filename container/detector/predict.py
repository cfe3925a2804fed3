"""Detections for images on this machine, through the same code as `serve`, with a picture of each.

    python -m detector.predict MODEL IMAGE... [--output DIR] [--score-threshold 0.3]

MODEL is the model folder (what SageMaker extracts to /opt/ml/model) or the model.tar.gz itself. Prints one JSON
line per image (the body `serve` would answer) and writes DIR/<image name>.detections.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from detector import jobs

jobs.cpu_threads()  # before mxnet is imported

import mxnet as mx  # noqa: E402

from detector import plots  # noqa: E402
from detector.inference import BadInput, Predictor, threshold_of  # noqa: E402
from detector.scoring import model_folder, safe_extract  # noqa: E402


def predict(model: Path, images: list[Path], *, output: Path, threshold: float | None) -> int:
    with tempfile.TemporaryDirectory() as temporary:
        folder = model
        if model.is_file():
            safe_extract(model, Path(temporary))
            folder = model_folder(Path(temporary))
        predictor = Predictor(folder)
    output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in images:
        data = path.read_bytes()
        try:
            answer = predictor.answer(data, threshold)
        except BadInput as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed += 1
            continue
        picture = output / f"{path.name}.detections.png"
        found = [(d["class"], d["score"], tuple(d["box"])) for d in answer["detections"]]
        plots.detections(mx.image.imdecode(data).asnumpy(), found, picture)
        print(json.dumps({"image": str(path), "picture": str(picture), **answer}))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the model folder or model.tar.gz")
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, default=Path("predictions"), help="where the pictures go")
    parser.add_argument("--score-threshold", default=None, help="default: the model's (as serve)")
    args = parser.parse_args(argv)
    try:
        threshold = None if args.score_threshold is None else threshold_of(args.score_threshold, "--score-threshold")
    except BadInput as error:
        parser.error(str(error))
    missing = [str(p) for p in [args.model, *args.images] if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    sys.exit(predict(args.model, args.images, output=args.output, threshold=threshold))


if __name__ == "__main__":
    main()
