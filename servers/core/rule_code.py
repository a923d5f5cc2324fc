"""Code in a rule: small Python functions, checked against an allow-list, compiled once when the rule
file is read, and run under a budget.

    @filter
    def cheap(item, ctx):            # keep (True) or drop (False) a candidate
        return item["price"] <= 50

    @score
    def fresh(item, score, ctx):     # the candidate's new score
        return score * 1.2 if item["category"] == "cat-003" else score

`item` is the candidate's metadata; `ctx` has `user` (an id, or None), `service`, `now` (the
dataset's clock) and `activity` (kind -> the item ids the user had events of that kind with).

The check is an explicit allow-list over Python's own syntax tree (`ast`), not RestrictedPython:
the language a rule needs is small (expressions, assignments, `if`, `for` over given data or
`range()`, comprehensions, `return`), and a list of what is allowed says exactly that; everything
else is refused with its line: imports, `while`, `global`/`nonlocal`, classes, nested functions,
`try`/`with`/`raise`, names or attributes starting with `_`, any name that is not an argument, a
local or one of BUILTINS, any attribute but METHODS and the context's fields, any call but those,
assignment into data (data passed in is read-only), string formatting, f-strings.

What the code can do at run time is bounded too: every loop and comprehension counts its steps
(MAX_STEPS per call) and watches the request's deadline; `+`, `*`, `**`, `<<` and `range()` refuse
results above MAX_SIZE elements or MAX_INT_BITS bits, and their sizes add up to at most MAX_MADE per
call. A call that breaks a bound raises `OverBudget`; the caller (`servers.core.judge`) skips the
function for the rest of the request and counts it.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = {"filter": 2, "score": 3}  # decorator -> number of arguments
MAX_STEPS = 100_000  # loop and comprehension steps per call
MAX_SIZE = 100_000  # elements (or characters) of one sequence made by + * range()
MAX_MADE = 1_000_000  # elements made by + * per call, in all
MAX_INT_BITS = 4096
METHODS = frozenset({"get", "keys", "values", "items", "count", "index", "startswith", "endswith", "lower", "upper", "strip"})
CONTEXT_FIELDS = frozenset({"user", "service", "now", "activity"})
STATEMENTS = (ast.Return, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.Pass, ast.Break, ast.Continue, ast.Expr)
EXPRESSIONS = (
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Name, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.Lambda, ast.comprehension, ast.keyword, ast.arguments, ast.arg,
    ast.Load, ast.Store, ast.boolop, ast.operator, ast.unaryop, ast.cmpop,
)  # fmt: skip
REFUSED = {
    ast.While: "while loops are not allowed: loop over given data or range()",
    ast.Import: "import is not allowed",
    ast.ImportFrom: "import is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.FunctionDef: "functions inside functions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
}
GUARDED = {ast.Add: "_add", ast.Mult: "_mul", ast.Pow: "_pow", ast.LShift: "_lshift", ast.Mod: "_mod"}


class CodeError(ValueError):
    """Rule code that may not run: the line (in the code string) and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class OverBudget(Exception):
    """A call went over a bound (steps, size, the request's deadline)."""


@dataclass(frozen=True)
class Context:
    """What rule code knows of the request (read-only)."""

    user: int | None
    service: str
    now: int
    activity: Mapping[str, frozenset[int]]


class Meter:
    """The bounds of the call running now (the event loop runs one call at a time)."""

    def __init__(self) -> None:
        self.steps = 0
        self.made = 0
        self.deadline = float("inf")  # time.perf_counter() value

    def begin(self, deadline: float) -> None:
        self.steps = 0
        self.made = 0
        self.deadline = deadline

    def loop(self, iterable: Any) -> Any:
        for value in iterable:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise OverBudget(f"more than {MAX_STEPS} loop steps")
            if not self.steps & 63 and time.perf_counter() > self.deadline:
                raise OverBudget("the request's time budget ran out")
            yield value

    def _made(self, result: Any) -> Any:
        if isinstance(result, int) and not isinstance(result, bool):
            if result.bit_length() > MAX_INT_BITS:
                raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
            return result
        if isinstance(result, (str, bytes, list, tuple)):
            self.made += len(result)
            if self.made > MAX_MADE:
                raise OverBudget(f"more than {MAX_MADE} elements made")
        return result

    def add(self, a: Any, b: Any) -> Any:
        if _sized(a) and _sized(b) and len(a) + len(b) > MAX_SIZE:
            raise OverBudget(f"a sequence above {MAX_SIZE} elements")
        return self._made(a + b)

    def mul(self, a: Any, b: Any) -> Any:
        for seq, n in ((a, b), (b, a)):
            if _sized(seq) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                raise OverBudget(f"a sequence above {MAX_SIZE} elements")
        if _whole(a) and _whole(b) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self._made(a * b)

    def pow(self, a: Any, b: Any) -> Any:
        if _whole(a) and _whole(b) and b > 0 and max(a.bit_length(), 1) * b > MAX_INT_BITS + b:
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self._made(a**b)

    def lshift(self, a: Any, b: Any) -> Any:
        if _whole(a) and _whole(b) and a.bit_length() + b > MAX_INT_BITS:
            raise OverBudget(f"an integer above {MAX_INT_BITS} bits")
        return self._made(a << b)

    def mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, (str, bytes)):
            raise OverBudget("string formatting is not allowed")
        return a % b

    def range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_SIZE:
            raise OverBudget(f"range() above {MAX_SIZE} numbers")
        return numbers


@dataclass(frozen=True)
class CodeFunction:
    name: str
    kind: str  # filter | score
    call: Callable[..., Any]
    meter: Meter  # the bounds of its calls (shared by the functions of one code string)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sum(values: Any, start: int | float = 0) -> Any:
    if not isinstance(start, (int, float)):
        raise TypeError("sum() adds numbers only")
    return sum(values, start)


BUILTINS: dict[str, Any] = {
    "len": len, "min": min, "max": max, "abs": abs, "sum": _sum, "any": any, "all": all, "sorted": sorted, "round": round,
}  # fmt: skip
ALLOWED_NAMES = frozenset({*BUILTINS, "range"})


def compile_code(code: str, where: str) -> list[CodeFunction]:
    """The `@filter` and `@score` functions of `code`, checked and compiled (`where` names the rule
    in tracebacks); a CodeError with the line and the reason if the code may not run."""
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as error:
        raise CodeError(error.lineno or 1, f"syntax error: {error.msg}") from None
    kinds = {}
    for node in tree.body:
        kinds[_check_function(node)] = node
    if not kinds:
        raise CodeError(1, "holds no @filter or @score function")
    meter = Meter()
    tree = ast.fix_missing_locations(_Guard().visit(tree))
    names: dict[str, Any] = {
        "__builtins__": {}, **BUILTINS, "range": meter.range,
        "_loop": meter.loop, "_add": meter.add, "_mul": meter.mul, "_pow": meter.pow, "_lshift": meter.lshift, "_mod": meter.mod,
    }  # fmt: skip
    exec(compile(tree, where, "exec"), names)
    return [CodeFunction(name, kind, names[name], meter) for (name, kind) in kinds]


def _check_function(node: ast.stmt) -> tuple[str, str]:
    """(name, kind) of a top-level function, or a CodeError."""
    if not isinstance(node, ast.FunctionDef):
        raise CodeError(node.lineno, "only @filter and @score functions may be at the top level")
    decorators = [d.id for d in node.decorator_list if isinstance(d, ast.Name)]
    if len(node.decorator_list) != 1 or decorators[0:1] not in (["filter"], ["score"]):
        raise CodeError(node.lineno, f"function {node.name!r} needs exactly one decorator: @filter or @score")
    kind = decorators[0]
    args = node.args
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults:
        raise CodeError(node.lineno, f"function {node.name!r}: plain arguments only")
    if len(args.args) != KINDS[kind]:
        shape = "(item, ctx)" if kind == "filter" else "(item, score, ctx)"
        raise CodeError(node.lineno, f"@{kind} function {node.name!r} takes {shape}")
    _check_name(node.name, node.lineno)
    known = {a.arg for a in args.args} | _assigned(node) | ALLOWED_NAMES
    for statement in node.body:
        _check_tree(statement, known)
    return node.name, kind


def _assigned(function: ast.FunctionDef) -> set[str]:
    """The names a function binds: assignment and loop targets, comprehension and lambda variables."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg) and node is not function:
            names.add(node.arg)
    return names


def _check_tree(root: ast.AST, known: set[str]) -> None:
    for node in ast.walk(root):
        line: int = getattr(node, "lineno", 0) or getattr(root, "lineno", 1)
        if type(node) in REFUSED:
            raise CodeError(line, REFUSED[type(node)])
        if not isinstance(node, STATEMENTS + EXPRESSIONS):
            raise CodeError(line, f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            raise CodeError(line, "a statement must assign, test, loop or return (data is read-only)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.For, ast.comprehension)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if not all(isinstance(t, (ast.Name, ast.Tuple, ast.List, ast.Store)) for t in ast.walk(target)):
                    raise CodeError(line, "only names can be assigned to (data is read-only)")
        elif isinstance(node, ast.Name):
            _check_name(node.id, line)
            if isinstance(node.ctx, ast.Load) and node.id not in known:
                raise CodeError(
                    line, f"name {node.id!r} is not allowed (allowed: arguments, locals, {', '.join(sorted(ALLOWED_NAMES))})"
                )
        elif isinstance(node, ast.arg):
            _check_name(node.arg, line)
        elif isinstance(node, ast.Attribute):
            _check_name(node.attr, line)
            if node.attr not in METHODS | CONTEXT_FIELDS:
                raise CodeError(line, f"attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Call):
            _check_call(node, line)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            if isinstance(node.left.value, (str, bytes)):
                raise CodeError(line, "string formatting is not allowed")
        elif isinstance(node, ast.keyword) and node.arg is None:
            raise CodeError(line, "**arguments are not allowed")


def _check_call(node: ast.Call, line: int) -> None:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name is not None:
        _check_name(name, line)
    if (isinstance(func, ast.Name) and func.id in ALLOWED_NAMES) or (isinstance(func, ast.Attribute) and func.attr in METHODS):
        return
    called = f"{name}()" if name else "this"
    allowed = f"{', '.join(sorted(ALLOWED_NAMES))} and the methods {', '.join(sorted(METHODS))}"
    raise CodeError(line, f"{called} cannot be called: only {allowed} can")


def _check_name(name: str, line: int) -> None:
    if name.startswith("_"):
        raise CodeError(line, f"names starting with '_' are not allowed: {name!r}")


class _Guard(ast.NodeTransformer):
    """Rewrites a checked tree so its loops count steps and its arithmetic checks sizes; drops the
    decorators and annotations (they never run)."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.decorator_list = []
        node.returns = None
        for arg in node.args.args:
            arg.annotation = None
        self.generic_visit(node)
        return node

    def visit_For(self, node: ast.For) -> ast.For:
        self.generic_visit(node)
        node.iter = _call("_loop", node.iter)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = _call("_loop", node.iter)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        guard = GUARDED.get(type(node.op))
        return _call(guard, node.left, node.right) if guard else node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.Assign:
        self.generic_visit(node)
        target = node.target
        assert isinstance(target, ast.Name)  # checked: only names are assigned to
        value = self.visit_BinOp(ast.BinOp(ast.Name(target.id, ast.Load()), node.op, node.value))
        return ast.Assign([ast.Name(target.id, ast.Store())], value)


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])
