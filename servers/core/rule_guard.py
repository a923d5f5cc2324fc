"""Rewrites checked rule code so that everything in it that can take time or memory goes through the
meter (servers.core.rule_meter): loops and comprehensions, every binary operator, comparisons other
than `is` and those against a constant, look-ups by a computed key, slices, literals, set elements
and dict keys, lambdas (the keys of sorted(), min(), max()), and method calls. Builtins need no
rewriting: the code's namespace binds their names to the meter's versions. Decorators and
annotations are dropped (they never run)."""

from __future__ import annotations

import ast
from typing import Any

from servers.core.rule_meter import HASH_MODULUS

OPERATORS = {
    ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_truediv", ast.FloorDiv: "_floordiv",
    ast.Mod: "_mod", ast.Pow: "_pow", ast.LShift: "_lshift", ast.RShift: "_rshift", ast.BitAnd: "_and",
    ast.BitOr: "_or", ast.BitXor: "_xor", ast.MatMult: "_matmul",
}  # fmt: skip
COMPARE_OPS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Is: "is",
    ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
UNARY = {ast.USub: "_neg", ast.UAdd: "_pos", ast.Invert: "_invert"}
CHEAP_CONSTANTS = (int, float, bool, str, type(None))  # comparing anything with one takes constant time


def guarded(tree: ast.Module) -> ast.Module:
    """`tree` (checked by servers.core.rule_code) rewritten to run under the meter."""
    return ast.fix_missing_locations(_Guard().visit(tree))


class _Guard(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.decorator_list = []
        node.returns = None
        for arg in node.args.args:
            arg.annotation = None
        self.generic_visit(node)
        return node

    def visit_For(self, node: ast.For) -> ast.For:
        self.generic_visit(node)
        node.iter = _call("_loop", node.iter, ast.Constant(_uncharged(node.body)))
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.ListComp:
        self.generic_visit(node)
        return _counted(node, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.GeneratorExp:
        self.generic_visit(node)
        return _counted(node, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> ast.SetComp:
        self.generic_visit(node)
        node.elt = _call("_hashable", node.elt)
        return _counted(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> ast.DictComp:
        self.generic_visit(node)
        node.key = _call("_hashable", node.key)
        return _counted(node, [node.key, node.value])

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) or _cheap(node.operand):
            return node
        return _call(UNARY[type(node.op)], node.operand)

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        self.generic_visit(node)
        node.body = _call("_key", node.body)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return _call(OPERATORS[type(node.op)], node.left, node.right)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.Assign:
        self.generic_visit(node)
        target = node.target
        assert isinstance(target, ast.Name)  # checked: only names are assigned to
        value = self.visit_BinOp(ast.BinOp(ast.Name(target.id, ast.Load()), node.op, node.value))
        return ast.Assign([ast.Name(target.id, ast.Store())], value)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        ops = [COMPARE_OPS[type(op)] for op in node.ops]
        if all(op in ("is", "is not") for op in ops):
            return node
        if len(ops) == 1:
            right = node.comparators[0]
            if ops[0] not in ("in", "not in") and (_cheap(node.left) or _cheap(right)):
                return node
            if ops[0] in ("in", "not in"):
                if _constants(right):
                    return node  # at most a few comparisons with constants
                return _call("_in" if ops[0] == "in" else "_not_in", node.left, right)
            return _call("_compare", ast.Constant(ops[0]), node.left, node.comparators[0])
        rest: list[ast.expr] = []
        for op, operand in zip(ops, node.comparators, strict=True):
            rest += [ast.Constant(op), ast.Lambda(_no_arguments(), operand)]
        return _call("_chain", node.left, *rest)

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return node
        if isinstance(node.slice, ast.Slice):
            parts = [node.slice.lower, node.slice.upper, node.slice.step]
            return _call("_slice", node.value, *(part or ast.Constant(None) for part in parts))
        if _cheap(node.slice):
            return node
        return _call("_item", node.value, node.slice)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):  # a method: checked to be one of rule_code.METHODS
            return ast.Call(
                ast.Name("_method", ast.Load()), [node.func.value, ast.Constant(node.func.attr), *node.args], node.keywords
            )
        return node

    def visit_List(self, node: ast.List) -> ast.expr:
        return self._literal(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self._literal(node)

    def visit_Set(self, node: ast.Set) -> ast.expr:
        self.generic_visit(node)
        node.elts = [e if _cheap_key(e) else _call("_hashable", e) for e in node.elts]
        return _call("_new", node)

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        self.generic_visit(node)
        node.keys = [k if k is None or _cheap_key(k) else _call("_hashable", k) for k in node.keys]
        return _call("_new", node)

    def _literal(self, node: ast.List | ast.Tuple) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load) or (all(_cheap(e) for e in node.elts) and len(node.elts) <= 8):
            return node  # an assignment target, or a few constants (allocated once, by the compiler)
        return _call("_new", node)


Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
UNCHARGED = (ast.Subscript, ast.Compare, ast.Attribute, ast.BoolOp, ast.IfExp, ast.UnaryOp, ast.List, ast.Tuple)


def _uncharged(nodes: list[Any]) -> int:
    """One step, plus the operations in `nodes` that run without a charge of their own (look-ups by a
    constant, comparisons with one, attributes, `and`/`or`, small literals): charged per loop step, so
    a long loop body is not one step."""
    return 1 + sum(isinstance(n, UNCHARGED) for root in nodes for n in ast.walk(root))


def _counted(node: Comprehension, parts: list[ast.expr]) -> Any:
    cost = _uncharged([*parts, *(test for g in node.generators for test in g.ifs)])
    for generator in node.generators:
        generator.iter = _call("_loop", generator.iter, ast.Constant(cost))
    return node


def _cheap(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, CHEAP_CONSTANTS)


def _constants(node: ast.expr) -> bool:
    """A tuple, list or set of a few cheap constants, written out (`x in ("a", "b")`)."""
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) <= 8 and all(map(_cheap_key, node.elts))


def _cheap_key(node: ast.expr) -> bool:
    """A constant that may go into a set or dict without a charge: one whose hash is not chosen to
    collide (servers.core.rule_meter refuses the others)."""
    if not _cheap(node):
        return False
    value = node.value  # type: ignore[attr-defined]
    return not isinstance(value, (int, float)) or -HASH_MODULUS < value < HASH_MODULUS


def _call(name: str, *args: Any) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])


def _no_arguments() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
