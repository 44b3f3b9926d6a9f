"""Randomness the release draws on: the OS's CSPRNG, read a block at a time.

Every released record gets a fresh random id and leaves in a random order. Each draw
from `os.urandom` or `random.SystemRandom` is a system call, and a shuffle makes one per
record: on a busy virtual machine a profiled worker spent about 9 µs per record in them.
Here the same source is read 4 KiB at a time (256 ids per call), and a shuffle sorts by
one random 64-bit key per item, all drawn at once from the same blocks. The bytes are
the kernel's, as before; a child process forked after a draw reads its own, never the
parent's block.
"""

from __future__ import annotations

import os
import threading
from collections.abc import MutableSequence
from typing import Any

BLOCK_BYTES = 4096


class _Block(threading.local):
    """The unread rest of the last block, per thread."""

    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_block = _Block()


def _forget_block() -> None:
    global _block
    _block = _Block()


os.register_at_fork(after_in_child=_forget_block)


def random_bytes(n: int) -> bytes:
    """`n` bytes from the OS's CSPRNG (a fresh read for requests over a block)."""
    if n > BLOCK_BYTES:
        return os.urandom(n)
    block = _block
    at = block.at
    if at + n > len(block.data):
        block.data = os.urandom(BLOCK_BYTES)
        at = 0
    block.at = at + n
    return block.data[at : at + n]


def shuffle(items: MutableSequence[Any]) -> None:
    """Put `items` in a uniformly random order, in place.

    Sorting by independent random 64-bit keys gives every order the same chance (two
    equal keys among a million items: about one chance in 36 million), with the keys
    drawn at once (from the current block when they fit) instead of one read per item.
    """
    n = len(items)
    if n < 2:
        return
    keys = memoryview(random_bytes(8 * n)).cast("Q")
    order = sorted(range(n), key=keys.__getitem__)
    items[:] = [items[i] for i in order]
