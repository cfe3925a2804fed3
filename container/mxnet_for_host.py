"""Which MXNet build a process of the GPU image imports: the CUDA one where a GPU driver is present, else the CPU
one that the image also holds (a CPU instance of the same pipeline, or the build host). The GPU image's
site-packages has a `.pth` line that imports this module at every interpreter start, before any `import mxnet`:
`mxnet-cu112` cannot even be imported without the driver's `libcuda.so.1`. The CPU image has no CPU folder and
no `.pth`, so there this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

CPU_BUILD = os.environ.get("DETECTOR_MXNET_CPU_BUILD", "/opt/mxnet-cpu")


def has_gpu_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def choose() -> None:
    if os.path.isdir(CPU_BUILD) and not has_gpu_driver() and CPU_BUILD not in sys.path:  # noqa: PTH112 (at start-up)
        sys.path.insert(0, CPU_BUILD)


choose()
