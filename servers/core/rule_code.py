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
local or one of ALLOWED_NAMES, any attribute but METHODS and the context's fields, any call but those,
assignment into data (data passed in is read-only), string formatting, f-strings.

What the code can do at run time is bounded by `servers.core.rule_meter`: the code is rewritten
(`servers.core.rule_guard`) so that every step and every operation whose cost grows with its operands
is charged to a meter (steps, memory, the request's deadline) before it runs. A call that breaks a
bound raises `OverBudget`; the caller (`servers.core.judge`) skips the function for the rest of the
request and counts it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from servers.core.rule_guard import guarded
from servers.core.rule_meter import BUILTIN_NAMES, MAX_INT_BITS, MAX_STEPS, Meter, OverBudget

KINDS = {"filter": 2, "score": 3}  # decorator -> number of arguments
MAX_NODES = 10_000  # syntax-tree nodes of one code string: what may run between two charged operations
MAX_CONSTANT_CHARS = 10_000  # of a string constant in the code
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
ALLOWED_NAMES = BUILTIN_NAMES


class CodeError(ValueError):
    """Rule code that may not run: the line (in the code string) and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Context:
    """What rule code knows of the request (read-only)."""

    user: int | None
    service: str
    now: int
    activity: Mapping[str, frozenset[int]]


@dataclass(frozen=True)
class CodeFunction:
    name: str
    kind: str  # filter | score
    call: Callable[..., Any]
    meter: Meter  # the bounds of its calls (shared by the functions of one code string)


def compile_code(code: str, where: str) -> list[CodeFunction]:
    """The `@filter` and `@score` functions of `code`, checked and compiled (`where` names the rule
    in tracebacks); a CodeError with the line and the reason if the code may not run."""
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as error:
        raise CodeError(error.lineno or 1, f"syntax error: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise CodeError(1, "nested too deeply to be read") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise CodeError(1, f"too long: {nodes} syntax nodes, at most {MAX_NODES}")
    kinds: dict[tuple[str, str], ast.stmt] = {}
    for node in tree.body:
        name, kind = _check_function(node)
        if any(name == seen for seen, _ in kinds):
            raise CodeError(node.lineno, f"function {name!r} is defined twice")
        kinds[name, kind] = node
    if not kinds:
        raise CodeError(1, "holds no @filter or @score function")
    meter = Meter()
    try:
        program = compile(guarded(tree), where, "exec")
    except (RecursionError, MemoryError, SyntaxError) as error:
        raise CodeError(getattr(error, "lineno", None) or 1, "cannot be compiled: nested too deeply") from None
    names: dict[str, Any] = {"__builtins__": {}, **meter.names()}
    exec(program, names)
    # the functions leave the namespace: a comprehension's variable used after it cannot reach them
    return [CodeFunction(name, kind, names.pop(name), meter) for (name, kind) in kinds]


def _check_function(node: ast.stmt) -> tuple[str, str]:
    """(name, kind) of a top-level function, or a CodeError."""
    if not isinstance(node, ast.FunctionDef):
        raise CodeError(node.lineno, "only @filter and @score functions may be at the top level")
    decorators = [d.id for d in node.decorator_list if isinstance(d, ast.Name)]
    if len(node.decorator_list) != 1 or decorators[0:1] not in (["filter"], ["score"]):
        raise CodeError(node.lineno, f"function {node.name!r} needs exactly one decorator: @filter or @score")
    kind = decorators[0]
    if node.type_params:
        raise CodeError(node.lineno, f"function {node.name!r}: type parameters are not allowed")
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
    called = {id(node.func) for node in ast.walk(root) if isinstance(node, ast.Call)}
    for node in ast.walk(root):
        line: int = getattr(node, "lineno", 0) or getattr(root, "lineno", 1)
        _check_value(node, line, called)
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


def _check_value(node: ast.AST, line: int, called: set[int]) -> None:
    """What the statement-by-statement check leaves open: constants too big to charge, methods taken
    as values (a `key=` that would run uncharged), lambdas with defaults (computed uncharged)."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise CodeError(line, f"an integer constant above {MAX_INT_BITS} bits")
        if isinstance(value, (str, bytes)) and len(value) > MAX_CONSTANT_CHARS:
            raise CodeError(line, f"a string constant above {MAX_CONSTANT_CHARS} characters")
    elif isinstance(node, ast.Attribute) and node.attr in METHODS and id(node) not in called:
        raise CodeError(line, f"the method {node.attr!r} can only be called, not passed on")
    elif isinstance(node, ast.Lambda) and (node.args.defaults or node.args.kw_defaults):
        raise CodeError(line, "lambda arguments cannot have defaults")
    elif isinstance(node, ast.keyword) and node.arg == "key" and not _a_key(node.value):
        raise CodeError(line, f"key= takes a lambda or one of {', '.join(sorted(ALLOWED_NAMES))}")


def _a_key(node: ast.expr) -> bool:
    return isinstance(node, ast.Lambda) or (isinstance(node, ast.Name) and node.id in ALLOWED_NAMES)


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


__all__ = ["MAX_STEPS", "CodeError", "CodeFunction", "Context", "OverBudget", "compile_code"]
