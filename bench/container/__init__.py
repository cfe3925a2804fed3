"""Benchmarks and recipes of the training container; they run in container/.venv."""
