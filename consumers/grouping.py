"""Groups of at least k distinct persons, each generalized only as far as it must be (SPEC 7).

Local recoding in the manner of Mondrian, over the policy's ladders (top-down
specialization). Every field starts at its coarsest rung; a group is split field by
field in the policy's order into the values of the next finer rung. Children with k
or more distinct persons become groups of their own; the rest of a split, made of
children each too small, is dealt with by the cheapest of:

- keeping it as one group at the coarser value, when it has k persons itself;
- borrowing whole persons (those with the fewest records) from children that have
  more than k, until it has k;
- merging it into the smallest child, which then keeps the coarser value;
- leaving it to the window's next pass (it is grouped again with every other record
  left over), allowed only while nothing but the time and the field being split has
  been refined, so that a left-over record never loses a precise location;
- not splitting on this field at all, when every option costs more records than
  the split would refine.

A group is released with its content: for each field, the finest rung at which all
of its members agree. Records that no pass can place (fewer than k persons left)
join an already formed group whose content covers them; otherwise they form a group
with persons borrowed from a group that has more than k, or a group climbs to take
them in, whichever loses less precision, unless suppressing them loses less.

Cost: each record is visited once per refinement of a group it is in; the
depth is bounded by the total number of rungs, so a window costs O(n * rungs).
Pure: no clock, no I/O, deterministic for a given input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPPRESSION_WEIGHT = 10
"""How much worse a suppressed record's lost field is than one record's field made coarser:
a suppressed record is missing from every count, a coarser one still counts."""

Paths = tuple[tuple[Any, ...], ...]
"""One record: per field, its value at every rung of the field's ladder, finest first.
Field 0 is the record time, which is never withheld."""

_Node = tuple[list[int], tuple[int, ...], frozenset[int]]


@dataclass(slots=True)
class Group:
    """Records released together with one content, shared by at least k distinct persons."""

    members: list[int]
    content: tuple[Any, ...]


@dataclass(slots=True)
class Grouping:
    """The groups a window's records were released in, and the records suppressed."""

    groups: list[Group] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)


def group(paths: Sequence[Paths], persons: Sequence[Hashable], k: int) -> Grouping:
    """Partition records into groups of at least `k` distinct persons (indices into `paths`)."""
    result = Grouping()
    if not paths:
        return result
    tops = tuple(len(ladder) - 1 for ladder in paths[0])
    pool = list(range(len(paths)))
    while pool:
        placed = False
        leftovers: list[int] = []
        for bucket in _by_coarsest_time(paths, pool, tops[0]):
            if _distinct(persons, bucket) < k:
                leftovers.extend(bucket)
                continue
            nodes, left = _partition(paths, persons, bucket, k, tops)
            result.groups.extend(Group(node, _content(paths, node, rungs)) for node, rungs in nodes)
            leftovers.extend(left)
            placed = True
        if not placed:
            break
        pool = leftovers
    if pool:
        _rescue(paths, persons, pool, k, tops, result)
    return result


def _by_coarsest_time(paths: Sequence[Paths], pool: list[int], top: int) -> list[list[int]]:
    """The pool split by the time's coarsest rung: a time is never withheld, so records of
    different coarsest buckets can never share a content."""
    buckets: dict[Any, list[int]] = defaultdict(list)
    for i in pool:
        buckets[paths[i][0][top]].append(i)
    return list(buckets.values())


def _distinct(persons: Sequence[Hashable], members: list[int]) -> int:
    return len({persons[i] for i in members})


def _partition(
    paths: Sequence[Paths],
    persons: Sequence[Hashable],
    pool: list[int],
    k: int,
    tops: tuple[int, ...],
) -> tuple[list[tuple[list[int], tuple[int, ...]]], list[int]]:
    """Top-down specialization of one pool: groups with their rungs, and left-over records."""
    groups: list[tuple[list[int], tuple[int, ...]]] = []
    leftovers: list[int] = []
    stack: list[_Node] = [(pool, tops, frozenset())]
    fields = range(len(tops))
    while stack:
        node, rungs, frozen = stack.pop()
        for d in fields:
            if rungs[d] == 0 or d in frozen:
                continue
            may_leave = all(rungs[x] == tops[x] for x in fields if x not in (0, d))
            split = _split(paths, persons, node, d, rungs[d] - 1, k, may_leave)
            if split is None:
                continue
            parts, left = split
            leftovers.extend(left)
            finer = (*rungs[:d], rungs[d] - 1, *rungs[d + 1 :])
            for members, refined in parts:
                if refined:
                    stack.append((members, finer, frozen))
                else:
                    stack.append((members, rungs, frozen | {d}))
            break
        else:
            groups.append((node, rungs))
    return groups, leftovers


def _split(
    paths: Sequence[Paths],
    persons: Sequence[Hashable],
    node: list[int],
    d: int,
    rung: int,
    k: int,
    may_leave: bool,
) -> tuple[list[tuple[list[int], bool]], list[int]] | None:
    """Split `node` on field `d` at `rung`: parts (members, refined?) and records left over.

    None when the split is impossible or costs more than it refines.
    """
    children: defaultdict[Any, list[int]] = defaultdict(list)
    for i in node:
        children[paths[i][d][rung]].append(i)
    if len(children) == 1:
        return [(node, True)], []
    good: list[list[int]] = []
    rest: list[int] = []
    for members in children.values():
        # Fewer records than k cannot hold k persons: no set needed to tell.
        if len(members) >= k and _distinct(persons, members) >= k:
            good.append(members)
        else:
            rest.extend(members)
    if not good:
        return None
    parts = [(members, True) for members in good]
    if not rest:
        return parts, []
    rest_persons = {persons[i] for i in rest}
    if len(rest_persons) >= k:
        return [*parts, (rest, False)], []
    refined = sum(len(members) for members in good)
    good.sort(key=len)
    options: list[tuple[int, str]] = []
    if may_leave:
        options.append((len(rest), "leave"))
    if len(good) >= 2:
        options.append((len(good[0]), "merge"))
    loan = _loan(good, rest_persons, persons, k)
    if loan is not None:
        options.append((loan[0], "borrow"))
    if not options:
        return None
    cost, how = min(options)
    if cost >= refined:
        return None
    if how == "leave":
        return [(members, True) for members in good], rest
    if how == "merge":
        return [(good[0] + rest, False), *((members, True) for members in good[1:])], []
    assert loan is not None
    for child, person in loan[1]:
        keep = [i for i in good[child] if persons[i] != person]
        rest.extend(i for i in good[child] if persons[i] == person)
        good[child] = keep
    return [*((members, True) for members in good), (rest, False)], []


def _loan(
    good: list[list[int]], rest_persons: set[Hashable], persons: Sequence[Hashable], k: int
) -> tuple[int, list[tuple[int, Hashable]]] | None:
    """The cheapest persons (fewest records) that children above k can give to reach k."""
    need = k - len(rest_persons)
    offers: list[tuple[int, int, Hashable]] = []
    for child, members in enumerate(good):
        counts: dict[Hashable, int] = defaultdict(int)
        for i in members:
            counts[persons[i]] += 1
        surplus = len(counts) - k
        if surplus <= 0:
            continue
        mine = sorted((n, repr(p), p) for p, n in counts.items() if p not in rest_persons)
        offers.extend((n, child, p) for n, _key, p in mine[:surplus])
    offers.sort(key=lambda offer: (offer[0], offer[1]))
    chosen: dict[Hashable, int] = {}
    cost = 0
    for n, child, person in offers:
        if person in chosen:
            continue
        chosen[person] = child
        cost += n
        if len(chosen) == need:
            return cost, [(c, p) for p, c in chosen.items()]
    return None


def _content(paths: Sequence[Paths], node: list[int], rungs: tuple[int, ...]) -> tuple[Any, ...]:
    """For each field, the value at the finest rung (at or below `rungs`) all members share."""
    content = []
    for d, rung in enumerate(rungs):
        best = rung
        for finer in range(rung - 1, -1, -1):
            first = paths[node[0]][d][finer]
            if all(paths[i][d][finer] == first for i in node):
                best = finer
            else:
                break
        content.append(paths[node[0]][d][best])
    return tuple(content)


def _rescue(
    paths: Sequence[Paths],
    persons: Sequence[Hashable],
    pool: list[int],
    k: int,
    tops: tuple[int, ...],
    result: Grouping,
) -> None:
    """Place the records no pass could group (fewer than k persons left), or suppress them.

    A record whose values a formed group's content already covers joins that group, which
    changes nothing for its members. The others, per coarsest time bucket, take the
    cheapest of: a new group with persons borrowed from a group that has more than k; a
    merge into a group, which then climbs to cover them; suppression. Costs count the
    records times the fields that lose precision; a suppressed record loses them all, at
    SUPPRESSION_WEIGHT times the cost.
    """
    by_time: dict[Any, list[Group]] = defaultdict(list)
    for formed in result.groups:
        by_time[paths[formed.members[0]][0][tops[0]]].append(formed)
    covers: dict[Paths, Group | None] = {}
    for bucket in _by_coarsest_time(paths, pool, tops[0]):
        candidates = by_time.get(paths[bucket[0]][0][tops[0]], [])
        left: list[int] = []
        for i in bucket:
            record = paths[i]
            if record not in covers:
                covers[record] = _finest_cover(record, candidates)
            target = covers[record]
            if target is None:
                left.append(i)
            else:
                target.members.append(i)
        if left:
            _borrow_merge_or_suppress(paths, persons, left, k, tops, candidates, result)


def _finest_cover(record: Paths, candidates: list[Group]) -> Group | None:
    best: tuple[int, Group] | None = None
    for candidate in candidates:
        depth = 0
        for ladder, value in zip(record, candidate.content, strict=True):
            if value not in ladder:
                break
            depth += ladder.index(value)
        else:
            if best is None or depth < best[0]:
                best = (depth, candidate)
    return None if best is None else best[1]


def _changed(before: tuple[Any, ...], after: tuple[Any, ...]) -> int:
    return sum(1 for a, b in zip(before, after, strict=True) if a != b)


def _borrow_merge_or_suppress(
    paths: Sequence[Paths],
    persons: Sequence[Hashable],
    left: list[int],
    k: int,
    tops: tuple[int, ...],
    candidates: list[Group],
    result: Grouping,
) -> None:
    suppress = len(left) * len(tops) * SUPPRESSION_WEIGHT
    best: tuple[int, str, Group | None, list[int]] = (suppress, "suppress", None, [])
    left_persons = {persons[i] for i in left}
    need = k - len(left_persons)
    for candidate in candidates:
        merged = _merged_content(paths, candidate, left, tops)
        cost = len(candidate.members) * _changed(candidate.content, merged)
        if cost < best[0]:
            best = (cost, "merge", candidate, [])
        borrowed = _cheapest_persons(candidate.members, persons, left_persons, need, k)
        if borrowed is not None:
            content = _content(paths, left + borrowed, tops)
            cost = len(borrowed) * _changed(candidate.content, content)
            if cost < best[0]:
                best = (cost, "borrow", candidate, borrowed)
    _cost, how, target, borrowed = best
    if how == "suppress" or target is None:
        result.suppressed.extend(left)
    elif how == "merge":
        target.members.extend(left)
        target.content = _content(paths, target.members, tops)
    else:
        taken = set(borrowed)
        target.members = [i for i in target.members if i not in taken]
        members = left + borrowed
        result.groups.append(Group(members, _content(paths, members, tops)))


def _merged_content(
    paths: Sequence[Paths], formed: Group, extra: list[int], tops: tuple[int, ...]
) -> tuple[Any, ...]:
    """The content of `formed` with `extra` records added, from one member and the extras."""
    representative = paths[formed.members[0]]
    content = []
    for d, value in enumerate(formed.content):
        ladder = representative[d]
        rung = ladder.index(value)
        while rung < tops[d] and any(paths[i][d][rung] != ladder[rung] for i in extra):
            rung += 1
        content.append(ladder[rung])
    return tuple(content)


def _cheapest_persons(
    members: list[int],
    persons: Sequence[Hashable],
    exclude: set[Hashable],
    need: int,
    k: int,
) -> list[int] | None:
    """Records of the `need` persons with fewest records, if the group keeps k persons."""
    by_person: dict[Hashable, list[int]] = defaultdict(list)
    for i in members:
        by_person[persons[i]].append(i)
    if len(by_person) - need < k:
        return None
    offers = sorted(
        (len(records), repr(person), records)
        for person, records in by_person.items()
        if person not in exclude
    )
    if len(offers) < need:
        return None
    return [i for _n, _key, records in offers[:need] for i in records]
