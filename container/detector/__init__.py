"""Step code of the training image: synth, ingest, preprocess, train and evaluate on the /opt/ml contract."""
