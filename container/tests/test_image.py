"""The GPU image's choice of MXNet build (mxnet_for_host.py, imported by a `.pth` line at interpreter start): the
CUDA build where a GPU driver is present, the CPU build it also holds elsewhere; and the Dockerfile's two
variants built from the one requirements file that container/.venv is built from."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CONTAINER = Path(__file__).resolve().parents[1]


def imported_mxnet(tmp_path: Path, cpu_build: Path) -> str:
    """Which mxnet a fresh interpreter imports when its site folder has the image's `.pth` line."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "mxnet_for_host.pth").write_text("import mxnet_for_host\n")
    code = f"import site; site.addsitedir({str(site)!r}); import mxnet; print(mxnet.__file__)"
    environment = {"PYTHONPATH": str(CONTAINER), "DETECTOR_MXNET_CPU_BUILD": str(cpu_build), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_without_a_gpu_driver_the_cpu_build_the_image_holds_is_imported(tmp_path: Path) -> None:
    from mxnet_for_host import has_gpu_driver

    assert not has_gpu_driver()  # this machine has no GPU: the case of a CPU instance and of the build host
    cpu_build = tmp_path / "mxnet-cpu"
    (cpu_build / "mxnet").mkdir(parents=True)
    (cpu_build / "mxnet" / "__init__.py").write_text("")

    assert imported_mxnet(tmp_path, cpu_build) == str(cpu_build / "mxnet" / "__init__.py")


def test_an_image_without_the_cpu_folder_imports_its_only_mxnet(tmp_path: Path) -> None:
    found = imported_mxnet(tmp_path, tmp_path / "absent")

    assert "site-packages/mxnet/__init__.py" in found


def test_both_variants_install_the_pinned_requirements_and_the_gpu_one_swaps_only_mxnet() -> None:
    dockerfile = (CONTAINER / "Dockerfile").read_text()
    requirements = (CONTAINER / "requirements.txt").read_text()
    [pin] = re.findall(r"^mxnet==(\S+)$", requirements, re.M)
    assert pin == "1.9.1"  # mxnet-cu112 has this version too (a py3-none manylinux2014 wheel)
    assert 'sed -i "s/^mxnet==/mxnet-cu112==/" requirements.txt' in dockerfile
    assert "--target /opt/mxnet-cpu \"$(grep '^mxnet==' requirements.txt)\"" in dockerfile  # the same CPU pin
    assert "python3 -m pip install --no-compile -r requirements.txt" in dockerfile
    assert "COPY mxnet_for_host.py ./" in dockerfile
    assert "FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04 AS base-gpu" in dockerfile
    assert "uv python install 3.11.7" in dockerfile  # the same Python as the CPU base (python:3.11.7)
    assert "FROM python:3.11.7-slim-bookworm AS base-cpu" in dockerfile
