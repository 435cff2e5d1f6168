"""A buffer of the simulator: the part of one tensor a storage holds, with its data, which elements
have been written, and when its slot and data are ready. A region strided along an axis holds only
the positions of its progression (element i of the axis is position lo + i x step), so a strided
tile occupies, moves and is charged at the positions gathered, never the span between them.

    >>> import numpy as np
    >>> buf = Buffer("I", "IBUF", ((0, 15, 2),), np.arange(8), np.ones(8, bool))
    >>> buf.view(((4, 9, 2),)), buf.view(((6, 15, 4),))   # positions 4, 6, 8 and 6, 10, 14
    ((slice(2, 5, 1),), (slice(3, 8, 2),))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mapper.program.instructions import Region, axis_size, axis_span


@dataclass(eq=False)
class Buffer:
    """A tile of `tensor` held in `storage` (off-chip: the whole tensor). Compared by identity."""

    tensor: str
    storage: str
    region: Region
    data: np.ndarray
    written: np.ndarray  # bool per element: read-before-write checking
    slot: int = 0
    earliest: float = 0.0  # when its slot is free
    ready: float = 0.0  # when its data is complete
    fed: float = 0.0  # when the data moves and initialisation put in it is complete
    last_use: float = 0.0
    charged: int = 0  # bytes counted against the storage's capacity (one instance's share if replicated)
    # Elements of `written` still False, kept exactly so that reads of a wholly written buffer (the
    # usual case) skip the per-element check: `complete` is `written.all()`.
    unwritten: int = field(init=False)
    complete: bool = field(init=False)

    def __post_init__(self) -> None:
        self.unwritten = self.written.size - int(np.count_nonzero(self.written))
        self.complete = self.unwritten == 0

    def view(self, region: Region) -> tuple[slice, ...]:
        """Slices of `data` holding `region`; KeyError when the buffer does not contain it."""
        out = []
        for axis, held in zip(region, self.region, strict=True):
            lo, hi, step = axis_span(axis)
            blo, bhi, bstep = axis_span(held)
            size = axis_size(axis)
            if not size:  # nothing there (a tile wholly in the padding): any buffer holds it
                out.append(slice(0, 0))
                continue
            if lo < blo or hi > bhi or (lo - blo) % bstep or (size > 1 and step % bstep):
                raise KeyError
            start, stride = (lo - blo) // bstep, step // bstep if size > 1 else 1
            out.append(slice(start, start + (size - 1) * stride + 1, stride))
        return tuple(out)

    def mark_written(self, sl: tuple[slice, ...]) -> None:
        if self.complete:
            return
        part = self.written[sl]  # a view: assigning to it marks the buffer
        self.unwritten -= part.size - int(np.count_nonzero(part))
        part[...] = True
        self.complete = self.unwritten == 0

    def is_written(self, sl: tuple[slice, ...]) -> bool:
        return self.complete or bool(self.written[sl].all())

    @property
    def nbytes(self) -> int:
        return self.data.nbytes
