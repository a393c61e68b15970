"""Pages over an ordered index whose newest changes are not stored yet.

The write-back cache holds executed transactions' index changes in memory until its
flush, so a read of an owner's objects or coins is the store's ordered scan with those
changes laid over it. Both are merged in key order: a dirty entry replaces the stored
one under the same key, a dirty deletion hides it, and a dirty entry the store does not
have yet joins at its place. A page is then the first `limit` entries of the merged
order from a cursor, and the cursor of the next page is the first entry left out, so
paging never repeats, skips or shows a deleted entry, whatever is dirty.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, Self, TypeVar


class _Ordered(Protocol):
    def __lt__(self, other: Self, /) -> bool: ...


K = TypeVar("K", bound=_Ordered)
V = TypeVar("V")
T = TypeVar("T")
C = TypeVar("C")


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T, C]):
    """Entries in index order, and where the next page starts (None: none is left)."""

    items: list[T]
    next_cursor: C | None


def merged(
    stored: Iterable[tuple[K, V]], overlay: Mapping[K, V | None] | None, start: K | None = None
) -> Iterator[tuple[K, V]]:
    """The live entries of `stored` (ascending keys, from `start`) with `overlay` laid
    over them (None: deleted), in key order, from `start` inclusive."""
    if not overlay:
        yield from stored
        return
    pending = sorted(
        (item for item in overlay.items() if start is None or not item[0] < start),
        key=_key_of,
    )
    position = 0
    for key, value in stored:
        while position < len(pending) and pending[position][0] < key:
            dirty_key, dirty = pending[position]
            position += 1
            if dirty is not None:
                yield dirty_key, dirty
        if position < len(pending) and not key < pending[position][0]:
            dirty = pending[position][1]
            position += 1
            if dirty is not None:
                yield key, dirty
            continue
        yield key, value
    for dirty_key, dirty in pending[position:]:
        if dirty is not None:
            yield dirty_key, dirty


def _key_of(item: tuple[Any, Any]) -> Any:
    return item[0]


def first_page(entries: Iterable[tuple[K, V]], limit: int) -> tuple[list[tuple[K, V]], K | None]:
    """The first `limit` entries, and the key of the one after them (None if none)."""
    if limit < 1:
        raise ValueError(f"a page holds at least one entry, not {limit}")
    taken = list(itertools.islice(entries, limit + 1))
    if len(taken) > limit:
        return taken[:limit], taken[limit][0]
    return taken, None
