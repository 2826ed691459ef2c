"""Device, thread and precision settings for inference, applied for the duration of a call."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

import torch

from bids_arca.errors import UsageError

DEVICES = ('auto', 'cpu', 'cuda')
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
    * CUDA: no cuDNN autotuning and deterministic algorithms, so two runs agree bit for bit;
      ``float32`` also forbids TF32 (Ampere and later use it for convolutions by default),
      ``tf32`` allows it, ``bfloat16`` and ``float16`` run convolutions under autocast. Batch
      statistics are always accumulated in float32.
    """
    if precision not in PRECISIONS:
        raise UsageError(f'precision {precision!r}: choose one of {", ".join(PRECISIONS)}')
    if device.type != 'cuda' and precision != 'float32':
        raise UsageError(f'precision {precision} needs a CUDA device; the CPU runs float32')
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        if device.type == 'cpu':
            stack.enter_context(reuse_freed_memory())
            if threads:
                previous = torch.get_num_threads()
                torch.set_num_threads(threads)
                stack.callback(torch.set_num_threads, previous)
        if device.type == 'cuda':
            cudnn = torch.backends.cudnn
            saved = (cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32)
            cudnn.benchmark, cudnn.deterministic = False, True
            cudnn.allow_tf32 = precision == 'tf32'
            stack.callback(_restore_cudnn, saved)
            if precision in _AUTOCAST:
                stack.enter_context(torch.autocast('cuda', dtype=_AUTOCAST[precision]))
        yield


def _restore_cudnn(saved: tuple[bool, bool, bool]) -> None:
    cudnn = torch.backends.cudnn
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = saved


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
