"""The release's randomness: the OS's bytes read a block at a time, and a bulk shuffle."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from itertools import permutations

from consumers import randomness
from consumers.randomness import BLOCK_BYTES, random_bytes, shuffle
from consumers.route import new_anon_id


def test_draws_have_the_asked_length_and_do_not_repeat_across_blocks() -> None:
    draws = [random_bytes(16) for _ in range(3 * BLOCK_BYTES // 16 + 5)]
    assert {len(d) for d in draws} == {16}
    assert len(set(draws)) == len(draws)
    assert len(random_bytes(BLOCK_BYTES - 1)) == BLOCK_BYTES - 1
    assert len(random_bytes(7)) == 7  # the rest of a block too short: a new block
    assert len(random_bytes(BLOCK_BYTES + 1)) == BLOCK_BYTES + 1


def test_anon_ids_are_version_4_uuids_and_all_distinct() -> None:
    ids = [new_anon_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {4}


def test_a_forked_child_does_not_draw_the_parents_block() -> None:
    random_bytes(16)  # the parent holds a block with unread bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next draw and leave at once
        os.close(read_end)
        os.write(write_end, random_bytes(16))
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != random_bytes(16), "the child read the parent's next bytes"


def test_shuffle_is_a_permutation_and_leaves_short_lists_alone() -> None:
    items = list(range(1_000))
    shuffle(items)
    assert sorted(items) == list(range(1_000))
    assert items != list(range(1_000))  # one chance in 1000! of failing
    for short in ([], [1]):
        copy = list(short)
        shuffle(copy)
        assert copy == short


def test_shuffle_gives_every_order_about_the_same_share() -> None:
    # 6 orders of 3 items, 12,000 shuffles: each expected 2,000 times. The bound is
    # about 7 standard deviations (sd ≈ 41): a fair shuffle crosses it less than once
    # in 10^11 runs; a shuffle that favoured an order by 20 % would not stay under it.
    seen: Counter[tuple[int, ...]] = Counter()
    for _ in range(12_000):
        items = [0, 1, 2]
        shuffle(items)
        seen[tuple(items)] += 1
    assert set(seen) == set(permutations(range(3)))
    assert all(abs(count - 2_000) < 300 for count in seen.values()), seen


def test_a_new_thread_draws_from_its_own_block() -> None:
    random_bytes(16)
    main_block = randomness._block.data
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(random_bytes(16)))
    thread.start()
    thread.join()
    assert got[0] not in main_block
