"""The run-time bounds of rule code: every operation that can take time or memory in proportion to its
operands is charged before it runs, so that no call outruns its budget.

Rule code (servers.core.rule_code) is rewritten so that its loops, arithmetic, comparisons, look-ups,
slices, literals, builtins and methods go through a `Meter`. The meter counts two things per call:

- steps: one per loop or comprehension step and per guarded operation, plus what the operation's
  C code will do: a comparison of two lists costs the nodes it may visit, `x in a_list` the list's
  length, `sorted()` n log n comparisons of its keys, a hash the key's nodes. Containers are weighed
  node by node with aliases counted each time they are reached, so that a list holding one big list
  100,000 times, or a tuple doubled 60 times over (`t = (t, t)`), weighs what comparing or hashing it
  would cost. At most MAX_STEPS per call.
- made: what the call allocates, in machine words: elements of every list, tuple, set, dict or
  slice it builds, characters of every string, words of every integer. At most MAX_MADE per call
  (about 8 MB of references; the objects they point to were counted as steps or made as well).

Every CHECK_EVERY steps, and before any operation charged more, the meter also looks at the clock:
past the request's deadline the call stops. A call that breaks a bound raises `OverBudget`.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from types import MappingProxyType
from typing import Any

MAX_STEPS = 100_000  # loop steps and charged operations per call
MAX_SIZE = 100_000  # elements (or characters) of one sequence made by + * range()
MAX_MADE = 1_000_000  # machine words allocated per call, in all
MAX_INT_BITS = 4096
MAX_ROUND_DIGITS = 1000  # round(x, n): 10**|n| stays below MAX_INT_BITS
MAX_DEPTH = 100  # containers within containers, for a hash or a comparison
HASH_MODULUS = 2**61 - 1
UNSAFE_KEY = "set elements and dict keys are strings, None, bools or numbers within ±2**61"
CHECK_EVERY = 16  # steps between two looks at the clock
SCALARS = frozenset({int, float, bool, type(None), range})  # compared, hashed and tested in constant time
HASHED = frozenset({set, frozenset, dict, MappingProxyType, type({}.keys()), type({}.items())})  # `in` hashes
SEQUENCES = (list, tuple)
VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
CONTAINERS = frozenset({list, tuple, set, frozenset, *VIEWS})
TEXT = frozenset({str, bytes})
SAFE_KEY_TYPES = frozenset({str, bytes, bool, type(None), int, float})


class OverBudget(Exception):
    """A call went over a bound (steps, memory, size, the request's deadline)."""


class Meter:
    """The bounds of the call running now (the event loop runs one call at a time)."""

    def __init__(self) -> None:
        self.steps = 0
        self.made = 0
        self.deadline = float("inf")  # time.perf_counter() value
        self._next_check = CHECK_EVERY

    def begin(self, deadline: float) -> None:
        self.steps = 0
        self.made = 0
        self.deadline = deadline
        self._check()

    # -- the two counters --------------------------------------------------------------------------

    def tick(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps >= self._next_check:
            self._check()

    def _check(self) -> None:
        if self.steps > MAX_STEPS:
            raise OverBudget(f"more than {MAX_STEPS} steps")
        if time.perf_counter() > self.deadline:
            raise OverBudget("the request's time budget ran out")
        self._next_check = min(self.steps + CHECK_EVERY, MAX_STEPS + 1)

    def allocate(self, words: int) -> None:
        self.made += words
        if self.made > MAX_MADE:
            raise OverBudget(f"more than {MAX_MADE} words allocated")

    def made_value(self, value: Any) -> Any:
        """`value`, just built by the code: its size checked and counted."""
        kind = type(value)
        if kind is int:
            bits = value.bit_length()
            if bits > MAX_INT_BITS:
                raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
            if bits > 64:
                self.allocate(bits >> 6)
        elif kind in (str, bytes):
            self.allocate(len(value) >> 1)  # up to 4 bytes a character
        elif kind in (list, tuple, set, frozenset, dict):
            self.allocate(len(value) * (3 if kind in (set, frozenset, dict) else 1))
        return value

    def weigh(self, value: Any, limit: int, keys: bool = False) -> int:
        """The nodes a comparison or a hash of `value` may visit (aliases counted each time), or a
        number above `limit` as soon as it is known to be more; OverBudget for containers nested
        deeper than MAX_DEPTH (CPython hashes and compares them by recursion), and with `keys`, for
        numbers built to collide in a hash table."""
        if type(value) in SCALARS:
            if keys and not _safe_key(value):
                raise OverBudget(UNSAFE_KEY)
            return _scalar_weight(value)
        total, stack = 0, [(value, 0)]
        while stack:
            item, depth = stack.pop()
            kind = type(item)
            if kind in SCALARS:
                if keys and not _safe_key(item):
                    raise OverBudget(UNSAFE_KEY)
                total += _scalar_weight(item)
                continue
            total += 1
            if kind is str or kind is bytes:
                total += len(item) >> 6
                continue
            if kind in (dict, MappingProxyType):
                item = [*item.keys(), *item.values()] if total + 2 * len(item) <= limit else range(limit + 1)
            elif kind not in CONTAINERS:
                continue
            if total + len(item) > limit:
                return limit + 1
            if depth >= MAX_DEPTH:
                raise OverBudget(f"containers nested more than {MAX_DEPTH} deep")
            types = set(map(type, item))  # a flat container is weighed at C speed
            if keys and not (types <= SAFE_KEY_TYPES and not any(map(_colliding, item))):
                raise OverBudget(UNSAFE_KEY)
            if types <= {int}:
                total += len(item) + (sum(map(int.bit_length, item)) >> 6)  # big integers hash and compare by their digits
            elif types <= SCALARS - {int}:
                total += len(item)
            elif types <= TEXT:
                total += len(item) + (sum(map(len, item)) >> 6)
            else:
                stack.extend((child, depth + 1) for child in item)
            if total > limit:
                return total
            if time.perf_counter() > self.deadline:
                raise OverBudget("the request's time budget ran out")
        return total

    def charge_weight(self, value: Any, times: int = 1, keys: bool = False) -> None:
        if type(value) in SCALARS and not keys:
            self.tick(times * _scalar_weight(value))
            return
        left = max(MAX_STEPS - self.steps, 0)
        self.tick(self.weigh(value, left // max(times, 1) + 1, keys) * times)

    def _items(self, iterable: Any) -> list[Any] | tuple[Any, ...] | str:
        """An iterable as a sequence: a generator is drained (its steps count), anything else sized
        is charged its length, then copied."""
        if type(iterable) in (list, tuple, str):
            return iterable
        if hasattr(iterable, "__len__"):
            self.tick(len(iterable))
        items = list(iterable)
        self.allocate(len(items))
        return items

    # -- rewritten syntax --------------------------------------------------------------------------

    def loop(self, iterable: Any, cost: int = 1) -> Iterator[Any]:
        """A for loop's or a comprehension's iterable: `cost` steps each (one, and the operations of
        its body that have no charge of their own)."""
        for value in iterable:
            self.steps += cost
            if self.steps >= self._next_check:
                self._check()
            yield value

    def key(self, value: Any) -> Any:
        """A lambda's result (a key of sorted(), min(), max()): one step and its weight."""
        self.charge_weight(value)
        return value

    def hashable(self, value: Any) -> Any:
        """A set element or dict key about to be hashed: charged, and refused if it is a number whose
        hash is built to collide (integers beyond 2**61 - 1 hash modulo it)."""
        self.charge_weight(value, keys=True)
        return value

    def new(self, value: Any) -> Any:
        """A list, tuple, set or dict written out in the code."""
        self.tick(1 + len(value))
        self.allocate(len(value))
        return value

    def item(self, container: Any, key: Any) -> Any:
        """`container[key]` for a key that is not a constant."""
        self.charge_weight(key)
        return container[key]

    def slice(self, container: Any, lower: Any, upper: Any, step: Any) -> Any:
        self.tick()
        result = container[lower:upper:step]
        if hasattr(result, "__len__"):
            self.tick(len(result))
            self.made_value(result)
        return result

    def compare(self, op: str, left: Any, right: Any) -> bool:
        if op in ("in", "not in"):
            found = self.contains(right, left)
            return found if op == "in" else not found
        if type(left) in SCALARS or type(right) in SCALARS:
            self.tick()
        else:  # the cost of comparing is bounded by the lighter side
            left_over = max(MAX_STEPS - self.steps, 0) + 1
            self.tick(self.weigh(right, self.weigh(left, left_over)))
        result: bool = COMPARISONS[op](left, right)
        return result

    def chain(self, left: Any, *rest: Any) -> bool:
        """`a < b < c`: rest holds (op, a function giving the next operand) pairs, evaluated lazily."""
        for index in range(0, len(rest), 2):
            right = rest[index + 1]()
            if not self.compare(rest[index], left, right):
                return False
            left = right
        return True

    def is_in(self, value: Any, container: Any) -> bool:
        return self.contains(container, value)

    def is_not_in(self, value: Any, container: Any) -> bool:
        return not self.contains(container, value)

    def contains(self, container: Any, value: Any) -> bool:
        kind = type(container)
        if kind in HASHED:
            if type(value) in SCALARS:  # the common case, inline: a look-up by a number
                self.steps += _scalar_weight(value)
                if self.steps >= self._next_check:
                    self._check()
                return value in container
            self.charge_weight(value)
        elif kind in (str, bytes):
            self.tick(1 + ((len(container) + (len(value) if type(value) is kind else 0)) >> 6))
        elif kind is range and type(value) in (int, bool):
            self.tick()
        else:
            container = self._items(container)
            self.charge_weight(value, max(len(container), 1))
        return value in container

    def method(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """`obj.name(*args)` for the allowed methods, charged by what they walk and make."""
        kind = type(obj)
        if name == "get" and type(args[0] if args else None) in TEXT | SCALARS:  # item.get("price"): a look-up
            self.tick()
        elif name in ("count", "index") and (kind in SEQUENCES or kind is range):
            if kind is not range or type(args[0] if args else None) not in (int, bool):  # range: ints in constant time
                self.charge_weight(args[0] if args else None, max(len(obj), 1))
        elif kind in (str, bytes):
            chars = sum(len(a) for a in args if type(a) is kind)
            self.tick((len(obj) * (1 + (chars if name == "strip" else 0))) >> 6)  # strip(chars): each end char tested
            self.charge_weight(args)
        elif args:  # get(key, default): the key is hashed
            self.charge_weight(args[0])
        else:
            self.tick()
        result = getattr(obj, name)(*args, **kwargs)
        return self.made_value(result) if name in ("lower", "upper", "strip") else result

    # -- arithmetic --------------------------------------------------------------------------------

    def add(self, a: Any, b: Any) -> Any:
        self.tick()
        if _sized(a) and _sized(b):
            if len(a) + len(b) > MAX_SIZE:
                raise OverBudget(f"a sequence above {MAX_SIZE} elements")
            self.tick(len(a) + len(b))
        return self.made_value(a + b)

    def mul(self, a: Any, b: Any) -> Any:
        self.tick()
        for seq, n in ((a, b), (b, a)):
            if _sized(seq) and _whole(n):
                if len(seq) * n > MAX_SIZE:
                    raise OverBudget(f"a sequence above {MAX_SIZE} elements")
                self.tick(max(len(seq) * n, 0))
        if _whole(a) and _whole(b) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self.made_value(a * b)

    def pow(self, a: Any, b: Any, modulo: None = None) -> Any:
        self.tick()
        if isinstance(a, int) and isinstance(b, int) and b > 0 and max(a.bit_length(), 1) * b > MAX_INT_BITS + b:
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self.made_value(a**b)

    def lshift(self, a: Any, b: Any) -> Any:
        self.tick()
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b > MAX_INT_BITS:  # True << n too
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self.made_value(a << b)

    def mod(self, a: Any, b: Any) -> Any:
        self.tick()
        if isinstance(a, (str, bytes)):
            raise OverBudget("string formatting is not allowed")
        return self.made_value(a % b)

    def neg(self, a: Any) -> Any:
        self.tick()
        return self.made_value(-a)

    def pos(self, a: Any) -> Any:
        self.tick()
        return self.made_value(+a)

    def invert(self, a: Any) -> Any:
        self.tick()
        return self.made_value(~a)

    def arithmetic(self, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """An operator whose cost is bounded by its operands' sizes (- / // >> & | ^ @): sets and
        dict views are charged their lengths, results counted."""

        def guarded(a: Any, b: Any) -> Any:
            if _collection(a) or _collection(b):  # a set operation: the elements of both sides are hashed
                a, b = (x if _collection(x) else self._items(x) for x in (a, b))
                self.charge_weight(a, keys=True)
                self.charge_weight(b, keys=True)
            else:
                self.tick()
            return self.made_value(op(a, b))

        return guarded

    # -- builtins ----------------------------------------------------------------------------------

    def range(self, *args: int) -> range:
        self.tick()
        if any(isinstance(a, int) and not -(2**63) < a < 2**63 for a in args):
            raise OverBudget("range() bounds beyond 2**63")
        numbers = range(*args)
        if len(numbers) > MAX_SIZE:
            raise OverBudget(f"range() above {MAX_SIZE} numbers")
        return numbers

    def _keys(self, items: Any, key: Callable[[Any], Any] | None) -> Any:
        """The values that will be compared: `items`, or their keys (one step each, and the key's
        own charge when it is a lambda of the code)."""
        if key is None:
            return items
        self.tick(len(items))
        keys = [key(item) for item in items]
        self.allocate(len(keys))
        return keys

    def sorted(self, iterable: Iterable[Any], key: Callable[[Any], Any] | None = None, reverse: bool = False) -> list[Any]:
        items = self._items(iterable)
        keys = self._keys(items, key)
        n = len(items)
        self.charge_weight(keys, max(1, math.ceil(math.log2(n + 1))))
        self.allocate(n)
        if key is None:
            return sorted(items, reverse=reverse)
        order = sorted(range(n), key=keys.__getitem__, reverse=reverse)
        return [items[i] for i in order]

    def min(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) > 1 and SCALARS.issuperset(map(type, args)):  # min(score, 1.0)
            self.tick(len(args))
            return min(args)
        return self._extreme(min, args, **kwargs)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) > 1 and SCALARS.issuperset(map(type, args)):
            self.tick(len(args))
            return max(args)
        return self._extreme(max, args, **kwargs)

    def _extreme(
        self, pick: Callable[..., Any], args: tuple[Any, ...], key: Callable[[Any], Any] | None = None, **default: Any
    ) -> Any:
        if set(default) - {"default"}:
            raise TypeError(f"{pick.__name__}() got an unexpected keyword argument")
        if len(args) == 0:
            raise TypeError(f"{pick.__name__} expected at least 1 argument, got 0")
        if len(args) > 1 and default:
            raise TypeError(f"Cannot specify a default for {pick.__name__}() with multiple positional arguments")
        items = self._items(args[0]) if len(args) == 1 else args
        if not items:
            if default:
                return default["default"]
            raise ValueError(f"{pick.__name__}() iterable argument is empty")
        keys = self._keys(items, key)
        self.charge_weight(keys)
        return items[pick(range(len(items)), key=keys.__getitem__)]

    def sum(self, iterable: Iterable[Any], start: int | float = 0) -> Any:
        if not isinstance(start, (int, float)):
            raise TypeError("sum() adds numbers only")
        items = self._items(iterable)
        self.tick(len(items))
        return self.made_value(sum(items, start))

    def any(self, iterable: Iterable[Any]) -> bool:
        self.tick(len(iterable) if isinstance(iterable, Sized) else 1)
        return any(iterable)

    def all(self, iterable: Iterable[Any]) -> bool:
        self.tick(len(iterable) if isinstance(iterable, Sized) else 1)
        return all(iterable)

    def round(self, number: Any, ndigits: int | None = None) -> Any:
        self.tick()
        if ndigits is not None and (not _whole(ndigits) or abs(ndigits) > MAX_ROUND_DIGITS):
            raise OverBudget(f"round() to more than {MAX_ROUND_DIGITS} digits")
        return round(number, ndigits)

    def names(self) -> dict[str, Any]:
        """The names rewritten code calls (see servers.core.rule_guard), bound to this meter."""
        return {
            "len": len, "abs": abs, "range": self.range, "sorted": self.sorted, "min": self.min, "max": self.max,
            "sum": self.sum, "any": self.any, "all": self.all, "round": self.round,
            "_loop": self.loop, "_key": self.key, "_hashable": self.hashable, "_new": self.new, "_item": self.item,
            "_slice": self.slice, "_compare": self.compare, "_in": self.is_in, "_not_in": self.is_not_in,
            "_chain": self.chain, "_method": self.method,
            "_add": self.add, "_mul": self.mul, "_pow": self.pow, "_lshift": self.lshift, "_mod": self.mod,
            "_neg": self.neg, "_pos": self.pos, "_invert": self.invert,
            **{name: self.arithmetic(op) for name, op in ARITHMETIC.items()},
        }  # fmt: skip


COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "is": operator.is_, "is not": operator.is_not,
}  # fmt: skip
ARITHMETIC: Mapping[str, Callable[[Any, Any], Any]] = {
    "_sub": operator.sub, "_truediv": operator.truediv, "_floordiv": operator.floordiv, "_rshift": operator.rshift,
    "_and": operator.and_, "_or": operator.or_, "_xor": operator.xor, "_matmul": operator.matmul,
}  # fmt: skip
BUILTIN_NAMES = frozenset({"len", "abs", "range", "sorted", "min", "max", "sum", "any", "all", "round"})


def _scalar_weight(value: Any) -> int:
    """What hashing or comparing a number costs: one step, and one per 64 bits of a big integer."""
    return 1 + (value.bit_length() >> 6) if type(value) is int else 1


def _safe_key(value: Any) -> bool:
    """A set element or dict key whose hash cannot be chosen to collide with many others: a string,
    None, a bool, or a number within ±(2**61 - 1). Tuples and ranges hash as fixed mixes of their
    parts, which can be solved for; numbers beyond the modulus hash modulo it."""
    return type(value) in SAFE_KEY_TYPES and not _colliding(value)


def _colliding(value: Any) -> bool:
    """A number whose hash collides with many others' at will (ints hash modulo 2**61 - 1; NaN too)."""
    kind = type(value)
    if kind is int:
        return not -HASH_MODULUS < value < HASH_MODULUS
    return kind is float and not -HASH_MODULUS < value < HASH_MODULUS


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _collection(value: Any) -> bool:
    return isinstance(value, (set, frozenset, dict, *VIEWS))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
