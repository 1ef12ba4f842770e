"""The computation graph recorded at a point, as text, Graphviz, Mermaid or JSON.

Every node carries its op (``MulBackward0``, ...), shape, value, the gradient of
the output with respect to it, and for expressions the text it came from.
Inputs and constants are the leaves.

Output stays linear in the graph's size whatever its shape: the text tree
indents at most ``MAX_DEPTH`` levels (a deeper subtree continues as a section
of its own below), and arrays of more than ``THRESHOLD`` elements are shown as
a summary unless ``full`` (numpy's print threshold, for the same reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import backward, graph
from .engine.tensor import Tensor
from .render import jsonable, text_value


MAX_DEPTH = 32  # levels of indentation in the text tree
THRESHOLD = 1000  # elements of an array shown whole (more: a summary)
EDGE = 3  # elements shown at each end of a summary


@dataclass
class Vertex:
    id: str
    kind: str  # "op", "input" or "constant"
    name: str  # grad_fn name, input name, or the constant's value
    text: str  # expression text ("" when unknown)
    value: np.ndarray
    grad: np.ndarray | None
    inputs: list[str] = field(default_factory=list)


def collect(out: Tensor, leaves: dict[str, Tensor], seed) -> tuple[list[Vertex], str]:
    """Vertices in creation order (inputs first) and the id of the output."""
    names = {id(t): n for n, t in leaves.items()}
    node_grads: dict[int, object] = {}
    if out._grad_fn is not None:
        def hook(node, g, gx):
            node_grads.setdefault(id(node), g)

        backward.run_backward(out._grad_fn, seed, retain_graph=True, create_graph=False,
                           wrap=Tensor._make, hook=hook, accumulate=False)
    vertices: dict[int, Vertex] = {}
    for n, t in leaves.items():
        g = t.grad
        vertices[id(t)] = Vertex(f"in_{n}", "input", n, n, np.asarray(t._data),
                                 None if g is None else np.asarray(g._data))
    nodes = sorted(graph.topological_order(out._grad_fn) if out._grad_fn else [],
                   key=lambda n: n.seq)
    values = graph.recorded_values(out._grad_fn, out._data) if out._grad_fn else {}
    consts = ops = 0
    for node in nodes:
        ins = []
        for a in node.args or ():
            if isinstance(a, Tensor) and a._grad_fn is not None:
                ins.append(vertices[id(a._grad_fn)].id)
            elif isinstance(a, Tensor) and id(a) in names:
                ins.append(vertices[id(a)].id)
            else:
                consts += 1
                data = np.asarray(a._data if isinstance(a, Tensor) else a)
                v = Vertex(f"c{consts}", "constant", text_value(data), "", data, None)
                vertices[id(v)] = v
                ins.append(v.id)
        g = node_grads.get(id(node))
        ops += 1
        vertices[id(node)] = Vertex(
            f"n{ops}", "op",
            node.op.grad_fn or node.op.name, node.label or "",
            np.asarray(values.get(id(node), np.nan)),
            None if g is None else np.asarray(g), ins)
    if out._grad_fn is not None:
        root = vertices[id(out._grad_fn)].id
    elif id(out) in names:
        root = vertices[id(out)].id
    else:
        v = Vertex("c0", "constant", text_value(out._data), "", np.asarray(out._data), None)
        vertices[id(v)] = v
        root = v.id
    return list(vertices.values()), root


def _short(a, limit: int = 40, precision: int | None = None, ellipsis: str = "…") -> str:
    a = np.asarray(a)
    if a.size > limit:  # only what can show: never the whole of a large array
        a = a.reshape(-1)[:limit]
        s = text_value(a, precision)[: limit - 1]
        return s + ellipsis
    s = text_value(a, precision)
    return s if len(s) <= limit else s[: limit - 1] + ellipsis


def _line(v: Vertex, precision: int | None, ellipsis: str) -> str:
    parts = [v.name]
    if v.kind == "op" and v.text:
        parts.append(repr(v.text))
    if v.kind != "op":
        parts.append(f"({v.kind})")
    parts.append(f"shape {tuple(np.shape(v.value))}")
    parts.append(f"value {_short(v.value, precision=precision, ellipsis=ellipsis)}")
    if v.grad is not None:
        parts.append(f"grad {_short(v.grad, precision=precision, ellipsis=ellipsis)}")
    return "  ".join(parts)


_UNICODE = {"mid": "├── ", "last": "└── ", "bar": "│   ", "more": "…"}
_ASCII = {"mid": "|-- ", "last": "`-- ", "bar": "|   ", "more": "..."}


def as_text(vertices: list[Vertex], root: str, precision: int | None = None,
            ascii_only: bool = False) -> str:
    """A tree from the output down; a node met again is shown once, then referenced.

    Below ``MAX_DEPTH`` levels a subtree is not indented further: it continues
    as a section of its own, after the tree, so deep graphs (a loop of 20,000
    steps) give output proportional to their size. ``ascii_only``: for a
    terminal or pipe whose encoding has no box-drawing characters.
    """
    art = _ASCII if ascii_only else _UNICODE
    by_id = {v.id: v for v in vertices}
    lines: list[str] = []
    shown: set[str] = set()
    sections = [root]
    while sections:
        top = sections.pop(0)
        if lines:
            lines.append(f"[{top}] continued:")
        stack = [(top, "", "", 0)]
        while stack:
            vid, prefix, branch, depth = stack.pop()
            v = by_id[vid]
            if vid in shown and v.kind == "op":
                lines.append(f"{prefix}{branch}{v.name} [{vid}, see above]")
                continue
            if depth > MAX_DEPTH and v.inputs:
                lines.append(f"{prefix}{branch}{v.name} [{vid}, continued below]")
                sections.append(vid)
                continue
            lines.append(f"{prefix}{branch}{_line(v, precision, art['more'])} [{vid}]")
            shown.add(vid)
            child_prefix = prefix + ("" if not branch else
                                     art["bar"] if branch == art["mid"] else "    ")
            kids = v.inputs
            for i in reversed(range(len(kids))):
                stack.append((kids[i], child_prefix,
                              art["last"] if i == len(kids) - 1 else art["mid"], depth + 1))
    return "\n".join(lines) + "\n"


def _label(v: Vertex, precision: int | None) -> list[str]:
    rows = [v.name] + ([v.text] if v.kind == "op" and v.text else [])
    rows.append(f"value {_short(v.value, 24, precision)}")
    if v.grad is not None:
        rows.append(f"grad {_short(v.grad, 24, precision)}")
    return rows


def as_dot(vertices: list[Vertex], root: str, precision: int | None = None) -> str:
    def esc(s: str) -> str:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
        return s.replace("\n", "\\n").replace("\r", "\\r")

    out = ["digraph gradcli {", "  rankdir=BT;", "  node [shape=box, fontname=monospace];"]
    for v in vertices:
        style = ", style=rounded" if v.kind != "op" else ""
        bold = ", penwidth=2" if v.id == root else ""
        label = "\\n".join(esc(r) for r in _label(v, precision))
        out.append(f'  {v.id} [label="{label}"{style}{bold}];')
    for v in vertices:
        for i in v.inputs:
            out.append(f"  {i} -> {v.id};")
    out.append("}")
    return "\n".join(out) + "\n"


def as_mermaid(vertices: list[Vertex], root: str, precision: int | None = None) -> str:
    def esc(s: str) -> str:
        # Mermaid reads labels as markup: every character that means something
        # there as an entity code ('#' first, since the codes start with it).
        for ch in "#&<>\"`":
            s = s.replace(ch, f"#{ord(ch)};")
        return s

    out = ["graph BT"]
    for v in vertices:
        out.append(f'  {v.id}["{"<br/>".join(esc(r) for r in _label(v, precision))}"]')
    for v in vertices:
        for i in v.inputs:
            out.append(f"  {i} --> {v.id}")
    return "\n".join(out) + "\n"


def summary(a) -> Any:
    """An array as JSON: whole up to ``THRESHOLD`` elements, else a summary
    object (``full`` asks for everything)."""
    a = np.asarray(a)
    if a.size <= THRESHOLD:
        return jsonable(a)
    flat = a.reshape(-1)
    with np.errstate(all="ignore"):
        lo, hi = (np.nanmin(flat), np.nanmax(flat)) if a.dtype.kind == "f" else (flat.min(), flat.max())
    return {"summary": True, "size": int(a.size), "first": jsonable(flat[:EDGE]),
            "last": jsonable(flat[-EDGE:]), "min": jsonable(lo), "max": jsonable(hi)}


def as_json(vertices: list[Vertex], root: str, target: str, full: bool = False) -> dict:
    show = jsonable if full else summary
    return {
        "schema": 1,
        "target": target,
        "output": root,
        "nodes": [
            {"id": v.id, "kind": v.kind, "name": v.name, "text": v.text,
             "shape": list(np.shape(v.value)), "value": show(v.value),
             "grad": None if v.grad is None else show(v.grad), "inputs": v.inputs}
            for v in vertices
        ],
    }
