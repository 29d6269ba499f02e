"""A small, safe expression language for ``required:`` and rules.

Expressions are parsed with Python's own parser and compiled into closures;
only comparisons, ``and``/``or``/``not``, literals, element names and a few
functions are allowed, so a dictionary file can never run code.
"""

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

# evaluate(item, case, context) -> value
Evaluator = Callable[[dict, dict, dict], object]

FUNCTIONS = {"filled", "count", "max", "min"}


@dataclass
class Compiled:
    text: str
    evaluate: Evaluator
    names: set[str] = field(default_factory=set)  # element names it reads
    context_names: set[str] = field(default_factory=set)


def is_filled(value) -> bool:
    return value is not None and value != "" and value != [] and value != ()


def _count(value) -> int:
    return len(value) if isinstance(value, list | tuple) else 0


def _numbers(value) -> list:
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]


def _ordered(op):
    def compare(a, b):
        if a is None or b is None:
            return False
        try:
            return op(a, b)
        except TypeError:
            return False

    return compare


def _contains(a, b):
    try:
        return a in b
    except TypeError:
        return False


COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
}


class _Compiler:
    def __init__(self, item_names, case_names, context_names, groups):
        self.item_names = item_names
        self.case_names = case_names
        self.context_names = context_names
        self.groups = groups  # group name -> set of its item element names
        self.names: set[str] = set()
        self.used_context: set[str] = set()

    def compile(self, node, item_names=None):
        scope = self.item_names if item_names is None else item_names
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"'{ast.unparse(node)}' is not allowed here")
        return method(node, scope)

    def error(self, message):
        from registry3d.dictionary.errors import ExpressionError

        return ExpressionError(message)

    def _Expression(self, node, scope):
        return self.compile(node.body, scope)

    def _Constant(self, node, scope):
        value = node.value
        if not isinstance(value, str | int | float | bool | type(None)):
            raise self.error(f"the literal {node.value!r} is not allowed")
        return lambda item, case, ctx: value

    def _List(self, node, scope):
        values = []
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                raise self.error("lists may hold only literal values")
            values.append(element.value)
        frozen = tuple(values)
        return lambda item, case, ctx: frozen

    _Tuple = _List

    def _Name(self, node, scope):
        name = node.id
        if scope and name in scope:
            self.names.add(name)
            return lambda item, case, ctx: item.get(name)
        if name in self.case_names:
            self.names.add(name)
            return lambda item, case, ctx: case.get(name)
        if name in self.context_names:
            self.used_context.add(name)
            return lambda item, case, ctx: ctx.get(name)
        raise self.error(f"'{name}' is not an element of the dictionary")

    def _BoolOp(self, node, scope):
        parts = [self.compile(v, scope) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda item, case, ctx: all(p(item, case, ctx) for p in parts)
        return lambda item, case, ctx: any(p(item, case, ctx) for p in parts)

    def _UnaryOp(self, node, scope):
        if isinstance(node.op, ast.Not):
            inner = self.compile(node.operand, scope)
            return lambda item, case, ctx: not inner(item, case, ctx)
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = -node.operand.value
            return lambda item, case, ctx: value
        raise self.error(f"'{ast.unparse(node)}' is not allowed here")

    def _Compare(self, node, scope):
        left = self.compile(node.left, scope)
        steps = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in COMPARE:
                raise self.error(f"the operator in '{ast.unparse(node)}' is not allowed")
            steps.append((COMPARE[type(op)], self.compile(comparator, scope)))

        def evaluate(item, case, ctx):
            a = left(item, case, ctx)
            for compare, right in steps:
                b = right(item, case, ctx)
                if not compare(a, b):
                    return False
                a = b
            return True

        return evaluate

    def _Call(self, node, scope):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.error(
                f"'{ast.unparse(node.func)}' is not a function of the dictionary; "
                f"use one of {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise self.error("functions take no keyword arguments")
        name = node.func.id
        args = node.args
        if name == "count" and len(args) == 2:
            if not isinstance(args[0], ast.Name) or args[0].id not in self.groups:
                raise self.error("count(group, condition) needs a group as its first argument")
            group = args[0].id
            self.names.add(group)
            condition = self.compile(args[1], self.groups[group])

            def count_where(item, case, ctx):
                items = case.get(group) if group in self.case_names else item.get(group)
                if not isinstance(items, list):
                    return 0
                return sum(
                    1 for each in items if isinstance(each, dict) and condition(each, case, ctx)
                )

            return count_where
        if len(args) != 1:
            raise self.error(f"{name}() takes one argument")
        inner = self.compile(args[0], scope)
        if name == "filled":
            return lambda item, case, ctx: is_filled(inner(item, case, ctx))
        if name == "count":
            return lambda item, case, ctx: _count(inner(item, case, ctx))
        pick = max if name == "max" else min
        return lambda item, case, ctx: pick(_numbers(inner(item, case, ctx)), default=0)


def compile_expression(
    text: str,
    *,
    case_names: set[str],
    groups: dict[str, set[str]],
    item_names: set[str] | None = None,
    context_names: frozenset[str] = frozenset({"site_printer_labels"}),
) -> Compiled:
    """Compile ``text``; raise ExpressionError for anything not allowed."""
    from registry3d.dictionary.errors import ExpressionError

    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(text) > 500:
        raise ExpressionError("an expression may be at most 500 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"'{text}' is not a valid expression: {exc.msg}") from None
    compiler = _Compiler(item_names or set(), case_names, context_names, groups)
    evaluate = compiler.compile(tree)
    return Compiled(text, evaluate, compiler.names, compiler.used_context)


def describe(condition: str, labels: dict) -> str:
    """Say a simple condition in words: "Type of 3D printed object is Anatomic guide".

    ``labels`` maps element names to (label, value set). Anything the
    translation does not cover is shown as written.
    """

    def words(node) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " and " if isinstance(node.op, ast.And) else " or "
            return joiner.join(words(v) for v in node.values)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name):
            label, value_set = labels.get(node.left.id, (node.left.id, None))
            op, right = node.ops[0], node.comparators[0]

            def show(value):
                if isinstance(value, bool):
                    return "yes" if value else "no"
                if value_set is not None and isinstance(value, str):
                    return value_set.label_of(value)
                return str(value)

            if isinstance(op, ast.Eq | ast.NotEq) and isinstance(right, ast.Constant):
                verb = "is" if isinstance(op, ast.Eq) else "is not"
                return f"{label} {verb} {show(right.value)}"
            if isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple):
                options = [show(c.value) for c in right.elts if isinstance(c, ast.Constant)]
                return f"{label} is " + ", ".join(options[:-1]) + f" or {options[-1]}"
        raise ValueError

    try:
        return words(ast.parse(condition.strip(), mode="eval").body)
    except (ValueError, SyntaxError, IndexError):
        return re.sub(r"\s+", " ", condition.strip())
