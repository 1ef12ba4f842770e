"""``gradcli graph`` under large, deep and hostile input (issue 12, items 4, 17, 18):
output linear in the graph's size, arrays summarised unless --full, a fallback
to ASCII art where the encoding has no box drawing, valid UTF-8 JSON, and every
label escaped for its format."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from test_cli import run


def gradcli(*argv: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradcli", *argv], capture_output=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=cwd)


def test_a_deep_loop_gives_output_linear_in_its_length(tmp_path):
    steps = 3000
    f = tmp_path / "deep.py"
    f.write_text(f"def f(x):\n    for _ in range({steps}):\n        x = x * 1.0001\n"
                 "    return x\n")
    r = run("graph", f"{f}:f", "--x", "1")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    # Every step's node appears once, indentation never passes the depth cap
    # (a tree indented 3,000 levels is 18 MB here, 3 GB at 20,000 steps).
    assert sum("MulBackward0" in line for line in lines) >= steps
    assert max(map(len, lines)) < 400
    assert len(r.out) < 2_000 * steps
    # What did not fit continues below, each part named once.
    cont = [line for line in lines if line.endswith("continued below]")]
    heads = [line for line in lines if line.endswith("continued:")]
    assert cont and len(cont) == len(heads)


def test_large_arrays_are_summarised_in_json_unless_full():
    r = run("graph", "sum(x * 2)", "--x", "arange(5000)", "--json")
    assert r.code == 0, r.err
    nodes = {n["id"]: n for n in json.loads(r.out)["nodes"]}
    x = nodes["in_x"]
    assert x["shape"] == [5000]
    assert x["value"] == {"summary": True, "size": 5000, "first": [0, 1, 2],
                          "last": [4997, 4998, 4999], "min": 0, "max": 4999}
    assert x["grad"]["min"] == x["grad"]["max"] == 2  # d sum(2x)/dx
    full = run("graph", "sum(x * 2)", "--x", "arange(5000)", "--json", "--full")
    xs = {n["id"]: n for n in json.loads(full.out)["nodes"]}["in_x"]
    assert xs["value"] == list(range(5000)) and xs["grad"] == [2] * 5000


def test_text_output_formats_only_what_it_shows_of_a_large_array():
    import tracemalloc

    run("graph", "sum(x)", "--x", "arange(10)")  # imports, outside the count
    tracemalloc.start()
    try:
        r = run("graph", "sum(x)", "--x", "arange(1000000)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.code == 0, r.err
    assert max(map(len, r.out.splitlines())) < 200
    # The input and its gradient (8 MB each) and little else: formatting the
    # whole array as text to show 40 characters of it took 14 times the input.
    assert peak < 4 * 8_000_000


def test_a_latin_1_terminal_gets_ascii_art():
    r = gradcli("graph", "2*dot(x,x)", "--x", "0,1,2,3", env={"PYTHONIOENCODING": "latin-1"})
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("latin-1")
    assert "`-- DotBackward0" in out and "|-- 2  (constant)" in out
    assert "\u2514" not in out


def test_json_is_valid_utf_8_for_a_file_name_that_is_not(tmp_path):
    name = b"model\xff.py"
    (tmp_path / os.fsdecode(name)).write_text("def f(x):\n    return x * x\n")
    r = gradcli("eval", os.fsdecode(name) + ":f", "--x", "2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout.decode("utf-8"))  # strict: raises on a raw 0xff
    assert obj["target"] == "model\ufffd.py:f" and obj["grad"] == {"x": 4.0}


def test_mermaid_and_dot_labels_are_escaped():
    r = run("graph", "sum(where(x > 0, x, 0))", "--x", "1,-1", "--format", "mermaid")
    assert r.code == 0, r.err
    labels = re.findall(r'\["(.*)"\]', r.out)
    assert labels and all(not re.search(r'[<>"`]', lab.replace("<br/>", "")) for lab in labels)
    assert any("x #62; 0" in lab for lab in labels)  # the text of the condition
    dot = run("graph", "sum(where(x > 0, x, 0))", "--x", "1,-1", "--format", "dot")
    assert re.search(r'label="[^"\n]*x > 0', dot.out)
