"""Device, thread and precision settings for inference, applied for the duration of a call."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

import torch

from bids_arca.errors import UsageError
from bids_arca.vocabulary import DEVICES

PRECISIONS = ('float32', 'tf32', 'bfloat16', 'float16')
_AUTOCAST = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def select_device(name: str = 'auto') -> torch.device:
    """``auto``: the first CUDA GPU if one is visible, else the CPU; ``cuda`` may name an index
    (``cuda:1``)."""
    kind = name.split(':')[0]
    if kind not in DEVICES:
        raise UsageError(f'--device {name}: choose one of {", ".join(DEVICES)}')
    if kind == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if kind == 'cuda' and not torch.cuda.is_available():
        raise UsageError(f'--device {name}: no CUDA GPU is visible to this process')
    return torch.device(name)


@contextlib.contextmanager
def inference_context(
    device: torch.device, threads: int | None = None, precision: str = 'float32'
) -> Iterator[None]:
    """Inference mode plus numerics that make results reproducible.

    * CPU: ``threads`` intra-op threads (restored afterwards).
    * CUDA: :func:`deterministic` (two runs agree bit for bit); ``float32`` also forbids TF32
      (Ampere and later use it for convolutions by default), ``tf32`` allows it, ``bfloat16``
      and ``float16`` run convolutions under autocast. Batch statistics are always accumulated
      in float32.
    """
    if precision not in PRECISIONS:
        raise UsageError(f'precision {precision!r}: choose one of {", ".join(PRECISIONS)}')
    if device.type != 'cuda' and precision != 'float32':
        raise UsageError(f'precision {precision} needs a CUDA device; the CPU runs float32')
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        stack.enter_context(deterministic(device))
        if device.type == 'cpu':
            stack.enter_context(reuse_freed_memory())
            if threads:
                previous = torch.get_num_threads()
                torch.set_num_threads(threads)
                stack.callback(torch.set_num_threads, previous)
        if device.type == 'cuda':
            cudnn = torch.backends.cudnn
            saved = cudnn.allow_tf32
            cudnn.allow_tf32 = precision == 'tf32'
            stack.callback(setattr, cudnn, 'allow_tf32', saved)
            if precision in _AUTOCAST:
                stack.enter_context(torch.autocast('cuda', dtype=_AUTOCAST[precision]))
        yield


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """The same bits from the same input on ``device`` (PyTorch's reproducibility notes), for the
    networks and the skull stripping; the previous settings are restored afterwards.

    On CUDA: no cuDNN autotuning, deterministic cuDNN algorithms and
    ``torch.use_deterministic_algorithms`` (an operation without a deterministic kernel warns;
    cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG``, set in ``bids_arca/__init__.py``). On the CPU
    nothing is needed: the kernels used here gave identical bits with 1 and 2 threads and from
    run to run (networks, deepbet; docs/outputs.md, "Reproducibility").
    """
    if device.type != 'cuda':
        yield
        return
    cudnn = torch.backends.cudnn
    saved = (
        cudnn.benchmark,
        cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn.benchmark, cudnn.deterministic = False, True
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Let glibc recycle freed memory for the large activation tensors, then give it back.

    glibc serves every allocation above 32 MB with a fresh ``mmap`` and unmaps it on free, so
    each activation of a slab batch (hundreds of MB) is page-faulted in again: on a 2-core VM
    this kernel time was 40 % of the CPU time. Inside this context large blocks come from the
    heap and are reused; ``malloc_trim`` returns them to the system afterwards. No-op where the
    C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc if hasattr(libc, 'gnu_get_libc_version') else None
    except (OSError, AttributeError):
        return None
