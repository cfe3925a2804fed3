"""The names the control plane shares with the definition: the champion's parameters and the files Evaluate writes.

No imports, so a function that only needs a name (POST /runs, notify, the schedule) loads neither the config's
models nor the definition builder.
"""

CHAMPION_URI, CHAMPION_VERSION = "ChampionModelUri", "ChampionVersion"
EVALUATION_FILE = "evaluation.json"
# the pictures Evaluate writes beside it (detector.evaluate): test predictions, and the model's training curves
PREDICTIONS_FILE, CURVES_FILE = "predictions.png", "training_curves.png"

# the run's registration bar: a run may raise it above the config's evaluation.map_threshold, never lower it
MAP_THRESHOLD = "MapThreshold"
RAISE_ONLY = frozenset({MAP_THRESHOLD})
