"""The peak memory a block of code (a training run) adds to the process.

``with PeakMemory(device) as peak: trainer.fit()`` then ``peak.bytes`` and ``peak.source``:

* **CUDA** (``source="cuda allocated"``): ``torch.cuda.max_memory_allocated`` during the block
  minus the bytes allocated when it began — tensors only (the caching allocator's reserve, the
  CUDA context and host memory are left out).
* **CPU on Linux** (``source="rss high-water mark"``): at entry the kernel's peak resident set
  size is reset to the current one (``/proc/self/clear_refs``, Linux ≥ 4.0) after glibc has
  returned its free heap pages (``malloc_trim``); at exit the peak (``VmHWM``) minus the resident
  size at entry. Every allocation of the process counts — tensors, the native data path's
  buffers, Python objects, other threads — and memory freed before the block but kept by the
  allocator can be reused without showing, so the number is the block's growth of the process,
  exact to a page and never sampled.
* **Elsewhere** (``source="maxrss growth"``): the growth of ``getrusage``'s lifetime peak over
  the block, a lower bound (0 when the block stays under an earlier peak of the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import resource
import sys
from pathlib import Path
from types import TracebackType

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{_STATUS} has no {field}")
    return int(match.group(1))


def _reset_high_water_mark() -> bool:
    """Returns the free heap to the system, then resets VmHWM to VmRSS; False where it cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass
    try:
        _CLEAR_REFS.write_text("5")
        _status_kib("VmHWM")
        _status_kib("VmRSS")
    except OSError:
        return False
    return True


def _maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class PeakMemory:
    """Context manager measuring the peak memory the block adds (see the module's docstring).

    Args:
        device: where the block allocates; ``cuda`` devices are measured through torch's
            allocator, anything else through the process's resident memory.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.bytes = 0
        self.source = ""
        self._start = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            self.source = "cuda allocated"
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        elif _reset_high_water_mark():
            self.source = "rss high-water mark"
            self._start = _status_kib("VmRSS") * 1024
        else:
            self.source = "maxrss growth"
            self._start = _maxrss_bytes()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.source == "cuda allocated":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.source == "rss high-water mark":
            peak = _status_kib("VmHWM") * 1024
        else:
            peak = _maxrss_bytes()
        self.bytes = max(0, peak - self._start)
