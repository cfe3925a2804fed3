"""The names the control plane shares with the definition: the files Evaluate writes, the run's threshold.

No imports, so a function that only needs a name (POST /runs, notify, the schedule) loads neither the config's
models nor the definition builder.
"""

EVALUATION_FILE = "evaluation.json"
# the pictures Evaluate writes beside it (detector.evaluate): test predictions, and the model's training curves
PREDICTIONS_FILE, CURVES_FILE = "predictions.png", "training_curves.png"

# what Preprocess writes in its `report` output (detector.preprocess.REPORT_FILE): GET /runs/{id} shows its figures
DATASET_REPORT = "dataset_report.json"


def dataset_report_beside(evaluation_uri: str) -> str:
    """The run's dataset report, from its evaluation.json's URI: the definition puts every output of a run at
    `<root>/<pipeline>/<execution id>/<step>/<output>/` (pipeline_def.definition's output_uri)."""
    run_folder = evaluation_uri.rsplit("/", 3)[0]  # less Evaluate/evaluation/evaluation.json
    return f"{run_folder}/Preprocess/report/{DATASET_REPORT}"


# what Preprocess writes beside it (detector.manifest.MANIFEST_FILE): the run's dataset, one line per image
MANIFEST_FILE = "manifest.jsonl"

# the run's data time (ISO 8601 with a UTC offset): Preprocess reads the offline-store rows written and the image
# versions current then; "" is the job's own start. The control plane sets it on every start (POST /runs, schedule).
DATA_AS_OF = "DataAsOf"

# the run's registration bar: a run may raise it above the config's evaluation.map_threshold, never lower it
MAP_THRESHOLD = "MapThreshold"
RAISE_ONLY = frozenset({MAP_THRESHOLD})

# where detector.ingest keeps the list of records it put (one file per ingest), for Preprocess to count those that the
# offline store does not hold yet (Feature Store writes it in batches, within 15 minutes of PutRecord)
INGEST_LOG_PREFIX = "ingest-log"


def ingest_log_uri(bucket: str, feature_group: str) -> str:
    return f"s3://{bucket}/{INGEST_LOG_PREFIX}/{feature_group}/"
