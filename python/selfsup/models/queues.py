"""Ring buffers of past embeddings (MoCo's queue, NNCLR's support set, SwAV's queue)."""

from __future__ import annotations

import torch


@torch.no_grad()
def ring_write(buffer: torch.Tensor, pointer: torch.Tensor, rows: torch.Tensor, filled: torch.Tensor | None = None) -> int:
    """Writes ``rows (B, D)`` over the oldest rows of the ring ``buffer (K, D)``, starting at
    ``pointer`` (a 0-dim long tensor, advanced in place) and wrapping around; with B > K only the
    newest K rows are kept. ``filled`` (a 0-dim long tensor), when given, counts the rows holding
    written data, up to K. Returns how many rows were written."""
    size = buffer.shape[0]
    rows = rows.detach()[-size:]
    start = int(pointer)
    buffer[(start + torch.arange(rows.shape[0], device=rows.device)) % size] = rows.to(buffer.dtype)
    pointer.fill_((start + int(rows.shape[0])) % size)
    if filled is not None:
        filled.fill_(min(int(filled) + int(rows.shape[0]), size))
    return int(rows.shape[0])
