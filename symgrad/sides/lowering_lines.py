"""The generated program without dead lines: a line whose variable nobody reads is not printed.

The lowering writes a step when the recursion meets a node, and some steps end up read by no line:
an element `t_00 = t[0, 0]` read for a loss that then takes the whole tensor (`t.reshape(-1)`,
`lowering._whole_tensors`), a step the user's order (`order.py`) wrote first and the expression
then wrote again. The program a student reads (and the one that runs) has no such line.

`unused_names(source)` is the rule's test: the names a program assigns and no line reads.
`prune(lines, body, output_line, line_map)` applies it before the program is compiled: a dead
step's line and the comment lines written for it go; a step that no other step of the IR reads
goes from the IR too; an element read that the IR still reads (the whole-tensor loss's operands,
element by element, for the exact sides) stays in the IR on no line (0), and `batch` computes it by
indexing, without its text. Every other line number (steps, branches, loops, the line map) is renumbered.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.codegen import ast as ast_codegen

from .ir import Branch, Cond, For, If, Operand, Step, Stmt, While, every_statement, steps_of


def unused_names(source: str) -> list[str]:
    """The names the function `f` of a generated program assigns (`name = ...`) and no line of it
    reads, in the order of their first assignment. A loop's own variable (`for i in range(3)`, the
    user's loop) is not an assignment line."""
    tree = ast.parse(source)
    stored: dict[str, None] = {}
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    stored.setdefault(t.id, None)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            loaded.add(node.id)
    return [n for n in stored if n not in loaded]


def _line_reads(lines: Sequence[str]) -> tuple[dict[int, str], dict[int, set[str]]]:
    """Per line of `f` (1-based): the name a plain assignment line stores, and the names a line
    reads. A line that is not a whole statement (a block's head) reads what its text names."""
    stores: dict[int, str] = {}
    reads: dict[int, set[str]] = {}
    for number, text in enumerate(lines, 1):
        code = text.strip()
        if not code or code.startswith("#"):
            continue
        if code.endswith(":"):  # if/elif/while/for/with: the condition's names
            code = code[:-1]
            for word in ("elif ", "if ", "while ", "with "):
                if code.startswith(word):
                    code = code[len(word):]
                    break
            else:
                if code.startswith("for ") and " in " in code:
                    code = code.split(" in ", 1)[1]
                elif code.startswith("else") or code.startswith("def "):
                    continue
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    if isinstance(tree.body[0], ast.Assign) and len(tree.body[0].targets) == 1 \
                            and isinstance(tree.body[0].targets[0], ast.Name):
                        stores[number] = node.id
                else:
                    names.add(node.id)
        reads[number] = names
    return stores, reads


def _only_line(lines: Sequence[str], number: int, dead: set[int]) -> bool:
    """Whether line `number` is the last code line left in its block (a loop's or a branch's body):
    the line above it that is code is the block's head, and the next line that is code is not in
    the block."""
    def code(k: int) -> bool:
        text = lines[k - 1].strip()
        return bool(text) and not text.startswith("#") and k not in dead

    indent = len(lines[number - 1]) - len(lines[number - 1].lstrip())
    above = next((k for k in range(number - 1, 0, -1) if code(k)), None)
    below = next((k for k in range(number + 1, len(lines) + 1) if code(k)), None)
    heads = above is not None and lines[above - 1].rstrip().endswith(":") and \
        len(lines[above - 1]) - len(lines[above - 1].lstrip()) < indent
    alone = below is None or len(lines[below - 1]) - len(lines[below - 1].lstrip()) < indent
    return heads and alone


def _operand_names(body: Sequence[Stmt], output: Operand) -> dict[str, int]:
    """How many IR operands (step arguments, conditions, loop bounds, the output) read each name."""
    count: dict[str, int] = {}

    def read(name: Any) -> None:
        if isinstance(name, str):
            count[name] = count.get(name, 0) + 1

    def cond(c: Cond | None) -> None:
        if c is not None:
            for _, n in c.names:
                read(n)

    for s in every_statement(body):
        if isinstance(s, Step):
            for a in s.args:
                read(a)
            cond(s.cond)
        elif isinstance(s, If):
            read(s.target)
            for b in s.branches:
                cond(b.cond)
        elif isinstance(s, While):
            cond(s.cond)
        elif isinstance(s, For):
            for a in s.bounds:
                read(a)
    read(output)
    return count


def prune(lines: list[str], body: tuple[Stmt, ...], output: Operand, output_line: int,
          line_map: dict[sp.Basic, int]) -> tuple[list[str], tuple[Stmt, ...], int, dict[sp.Basic, int]]:
    """The program's lines, IR, output line and line map without the dead lines (see the module)."""
    stores, reads = _line_reads(lines)
    steps = {s.line: s for s in steps_of(body)}
    ir_reads = _operand_names(body, output)
    dead: set[int] = set()
    drop_ir: set[int] = set()  # lines of steps removed from the IR too
    while True:
        loaded: dict[str, int] = {}
        for number, names in reads.items():
            if number not in dead:
                for n in names:
                    loaded[n] = loaded.get(n, 0) + 1
        assigned = {}
        for number, name in stores.items():
            if number not in dead:
                assigned.setdefault(name, []).append(number)
        found = False
        for name, numbers in assigned.items():
            if loaded.get(name) or len(numbers) != 1:
                continue  # read somewhere, or assigned on several lines (a loop's variable)
            number = numbers[0]
            step = steps.get(number)
            if step is None or step.name != name or number == output_line or isinstance(step.node, ast_codegen.Assignment):
                continue  # not a step; the output; a statement the user wrote (their program, as they wrote it)
            if _only_line(lines, number, dead):
                continue  # its block would be left without a line
            if ir_reads.get(name, 0) and step.op != "elem":
                continue  # the IR reads it and only an element read runs without its text
            dead.add(number)
            if not ir_reads.get(name, 0):
                drop_ir.add(number)
                for a in step.args:  # its operands lose a reader in the IR too
                    if isinstance(a, str):
                        ir_reads[a] = ir_reads.get(a, 0) - 1
                        if ir_reads[a] <= 0:
                            ir_reads.pop(a)
            found = True
        if not found:
            break
    if not dead:
        return lines, body, output_line, line_map
    gone = set(dead)
    for number in dead:  # the comment lines written for it, directly above at its indentation
        indent = len(lines[number - 1]) - len(lines[number - 1].lstrip())
        k = number - 1
        while k >= 1 and lines[k - 1].lstrip().startswith("#") and \
                len(lines[k - 1]) - len(lines[k - 1].lstrip()) == indent and k not in gone:
            gone.add(k)
            k -= 1
    new_number: dict[int, int] = {}
    kept: list[str] = []
    for number, text in enumerate(lines, 1):
        if number not in gone:
            kept.append(text)
        new_number[number] = len(kept) if number not in gone else 0

    def renumber(n: int) -> int:
        return new_number.get(n) or n

    def line_of_dead(step: Step) -> int:
        return 0  # no line of the program prints it: the path shows it on no line

    def fix(stmts: Sequence[Stmt]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for s in stmts:
            if isinstance(s, Step):
                if s.line in drop_ir:
                    continue
                out.append(dataclasses.replace(s, line=line_of_dead(s) if s.line in dead else renumber(s.line)))
            elif isinstance(s, If):
                out.append(dataclasses.replace(s, line=renumber(s.line), branches=tuple(
                    Branch(b.cond, fix(b.body), renumber(b.line)) for b in s.branches)))
            else:
                out.append(dataclasses.replace(s, line=renumber(s.line), body=fix(s.body)))  # type: ignore[call-arg]
        return tuple(out)

    new_body = fix(body)
    moved = {s.line: line_of_dead(s) for s in steps_of(body) if s.line in dead}
    new_map = {}
    for node, n in line_map.items():
        if n in moved:
            if moved[n]:
                new_map[node] = moved[n]
        else:
            new_map[node] = renumber(n)
    return kept, new_body, renumber(output_line), new_map
