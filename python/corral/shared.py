"""The job's shared values and arrays (`shared:` in its config), from a
Python worker on the shm channel, atomic across the job's workers:

    import corral.shared

    processed = corral.shared.value("processed")   # declared: {type: u64}
    processed.add(1)                               # atomically; the value before
    print(processed.value)                         # read; `processed.value = 0` stores

    hist = corral.shared.array("histogram")        # declared: {type: u64, length: 10}
    hist.add(3, 1)
    print(len(hist), hist[3], list(hist))

As multiprocessing.Value and Array, without their lock: each load, store
and add is atomic on its own, but `v.value += 1` is a load and then a
store (another worker's add in between is lost): use add(). The element
type is the config's (u64 and i64 are ints, f64 floats); a u64's add()
takes a negative delta and wraps as unsigned arithmetic does.

Outside a worker on the shm channel (or without corral's native module)
value() and array() raise RuntimeError saying why; corral.Client.shared()
reads the same cells from anywhere, through corrald.
"""

__all__ = ["value", "array", "Value", "Array"]


def _cells(name, array):
    try:
        from . import _native
    except ImportError:
        raise RuntimeError("corral.shared needs corral's native module (corral._native), "
                           "which is built and installed with corral where python3-dev "
                           "is") from None
    cells = _native.find_shared(name)
    if cells.is_array != array:
        kind = "an array" if cells.is_array else "a value"
        raise TypeError(f"shared {name!r} is {kind}: use corral.shared."
                        f"{'array' if cells.is_array else 'value'}({name!r})")
    return cells


class _Shared:
    """What a value and an array share: their cells, name and type."""

    __slots__ = ("_cells",)

    def __init__(self, cells):
        self._cells = cells

    @property
    def name(self) -> str:
        return self._cells.name

    @property
    def type(self) -> str:
        """u64, i64 or f64, as the config declares."""
        return self._cells.type


class Value(_Shared):
    """One shared cell: .value reads and stores it, add() adds atomically."""

    __slots__ = ()

    @property
    def value(self):
        return self._cells.load(0)

    @value.setter
    def value(self, new):
        self._cells.store(0, new)

    def add(self, delta=1):
        """Adds DELTA atomically; returns the value before."""
        return self._cells.add(0, delta)

    def __repr__(self):
        return f"<corral.shared.Value {self.name!r} {self.type} {self.value!r}>"


class Array(_Shared):
    """A shared array: a sequence of atomic cells of a fixed length."""

    __slots__ = ()

    def __len__(self):
        return len(self._cells)

    def _index(self, i):
        i = i.__index__()
        return i + len(self._cells) if i < 0 else i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._cells.load(j) for j in range(*i.indices(len(self._cells)))]
        return self._cells.load(self._index(i))

    def __setitem__(self, i, new):
        if isinstance(i, slice):
            indexes = range(*i.indices(len(self._cells)))
            new = list(new)
            if len(new) != len(indexes):
                raise ValueError(f"cannot store {len(new)} values into {len(indexes)} cells"
                                 " (a shared array's length is fixed)")
            for j, v in zip(indexes, new):
                self._cells.store(j, v)
            return
        self._cells.store(self._index(i), new)

    def __iter__(self):
        cells = self._cells
        return (cells.load(j) for j in range(len(cells)))

    def add(self, i, delta=1):
        """Adds DELTA to element I atomically; returns its value before."""
        return self._cells.add(self._index(i), delta)

    def __repr__(self):
        return f"<corral.shared.Array {self.name!r} {self.type} {list(self)!r}>"


def value(name: str) -> Value:
    """The job's shared value NAME."""
    return Value(_cells(name, False))


def array(name: str) -> Array:
    """The job's shared array NAME."""
    return Array(_cells(name, True))
