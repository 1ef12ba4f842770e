"""VALUE syntax: every form, every refusal, and the format/parse round trip."""

from __future__ import annotations

import doctest
import json
import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from gradcli import values
from gradcli.errors import UsageError
from gradcli.values import format_number, format_value, parse_value


def parse(text: str, **kwargs: object) -> np.ndarray:
    return parse_value(text, name="x", **kwargs)


def assert_same(actual: np.ndarray, expected: object, dtype=np.float64) -> None:
    """Same dtype, shape and bits (so -0.0 and 0.0 differ)."""
    expected = np.asarray(expected, dtype=dtype)
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()


def refused(text: str, *fragments: str, **kwargs: object) -> str:
    """Parse must fail with a UsageError naming input x and each fragment."""
    with pytest.raises(UsageError) as info:
        parse(text, **kwargs)
    message = str(info.value)
    assert message.startswith("input x: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- scalars, lists, matrices -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5", 0.5),
        ("-1e-3", -0.001),
        ("3", 3.0),
        ("+2", 2.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("1E2", 100.0),
        ("  7  ", 7.0),
        ("-0", -0.0),
        ("1e-400", 0.0),  # underflow is a number, just a tiny one
        ("1.7976931348623157e308", 1.7976931348623157e308),
    ],
)
def test_scalar_is_0d(text: str, expected: float) -> None:
    assert_same(parse(text), expected)


def test_comma_list() -> None:
    assert_same(parse("0,1,2,3"), [0.0, 1.0, 2.0, 3.0])
    assert_same(parse(" 1 , -2.5 ,3e2 "), [1.0, -2.5, 300.0])


def test_matrix() -> None:
    assert_same(parse("1,2;3,4"), [[1.0, 2.0], [3.0, 4.0]])
    assert_same(parse(" 1, 2 ; 3 ,4 ; 5,6"), [[1, 2], [3, 4], [5, 6]])
    assert_same(parse("1;2;3"), [[1.0], [2.0], [3.0]])


def test_float32_dtype() -> None:
    assert_same(parse("0.1,2", dtype=np.float32), [0.1, 2.0], np.float32)
    assert_same(parse("[[1]]", dtype="float32"), [[1.0]], np.float32)
    # The largest float32 is fine, one float64 beyond the rounding edge is not.
    assert_same(parse("3.4028235e38", dtype=np.float32), 3.4028235e38, np.float32)
    refused("1e39", "non-finite value '1e39'", "float32", dtype=np.float32)


def test_non_float_dtype_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        parse("1", dtype=np.int64)


# -- JSON ---------------------------------------------------------------------


def test_json_arrays() -> None:
    assert_same(parse("[[1,2],[3,4]]"), [[1.0, 2.0], [3.0, 4.0]])
    assert_same(parse("[1, 2]"), [1.0, 2.0])
    assert_same(parse("[5]"), [5.0])
    assert_same(parse("[[[1],[2]],[[3],[4]]]"), [[[1], [2]], [[3], [4]]])
    assert_same(parse("[-0, 1.5e+2, 2E-1]"), [-0.0, 150.0, 0.2])
    assert_same(parse(" [\n 1,\t2 ] "), [1.0, 2.0])


def test_json_empty_shapes() -> None:
    assert parse("[]").shape == (0,)
    assert parse("[[]]").shape == (1, 0)
    assert parse("[[],[],[]]").shape == (3, 0)


def test_json_huge_integer_is_non_finite_not_slow() -> None:
    refused("[" + "9" * 5000 + "]", "non-finite value")


# -- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty value"]),
        ("   ", ["empty value"]),
        ("abc", ["'abc' is not a number"]),
        ("1_000", ["'1_000' is not a number"]),
        ("0x10", ["'0x10' is not a number"]),
        ("١٢", ["is not a number"]),  # float() would take Arabic-Indic digits
        ("1 2", ["'1 2' is not a number"]),
        ("--1", ["'--1' is not a number"]),
        ("nan", ["non-finite value 'nan'"]),
        ("inf", ["non-finite value 'inf'"]),
        ("-Infinity", ["non-finite value '-Infinity'"]),
        ("1e400", ["non-finite value '1e400'"]),
        ("1,nan", ["non-finite value 'nan'"]),
        ("1,,2", ["empty item 2"]),
        ("1,2,", ["empty item 3"]),
        (",1", ["empty item 1"]),
        ("1,2;3,", ["empty item 2 in row 2"]),
        ("1,2;3,4;", ["empty row 3"]),
        (";1", ["empty row 1"]),
        ("1,2;3,4,5", ["ragged rows (row 2 has 3 values, row 1 has 2)"]),
        ("1,2;3", ["ragged rows (row 2 has 1 value, row 1 has 2)"]),
        ("1,x;3,4", ["'x' is not a number"]),
        ("[[1,2],[3]]", ["ragged array", "[1] has 1 value", "[0] has 2"]),
        ("[[1,2],[3,4,5]]", ["ragged array", "[1] has 3 values"]),
        ("[1,[2]]", ["ragged array", "[1] is a list"]),
        ("[[1],2]", ["ragged array", "[1] is a number"]),
        ("[[[1,2]],[[3]]]", ["ragged array", "[1][0] has 1 value"]),
        ('[1,"a"]', ["'\"a\"' is not a number"]),
        ("[null]", ["'null' is not a number"]),
        ("[true,false]", ["'true' is not a number"]),
        ("[{}]", ["JSON objects are not numbers"]),
        ("[NaN]", ["non-finite value 'NaN'"]),
        ("[-Infinity]", ["non-finite value 'Infinity'"]),
        ("[1e999]", ["non-finite value '1e999'"]),
        ("[1,]", ["invalid JSON", "column 4"]),
        ("[1] [2]", ["invalid JSON"]),
        ("[01]", ["invalid JSON"]),
        ("[+1]", ["invalid JSON"]),
        ("[.5]", ["invalid JSON"]),
        ("[", ["invalid JSON"]),
        ("[" * 100_000, ["nested too deeply"]),
        ("[" * 40 + "1" + "]" * 40, ["more than 32 dimensions"]),
    ],
)
def test_refusals(text: str, fragments: list[str]) -> None:
    refused(text, *fragments)


def test_long_text_is_shortened_in_messages() -> None:
    message = refused("y" * 10_000, "is not a number")
    assert len(message) < 200


# -- constructors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("arange(4)", [0.0, 1.0, 2.0, 3.0]),
        ("arange(1,5)", [1.0, 2.0, 3.0, 4.0]),
        ("arange(0,1,0.25)", [0.0, 0.25, 0.5, 0.75]),
        ("arange(3, 0, -1)", [3.0, 2.0, 1.0]),
        ("arange(5,0)", np.zeros(0)),
        ("linspace(0,1,5)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("linspace(2, 2, 1)", [2.0]),
        ("zeros(3)", [0.0, 0.0, 0.0]),
        ("zeros(2,3)", [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        ("zeros(0)", np.zeros(0)),
        ("zeros()", 0.0),
        ("ones(2,3)", [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]),
        ("ones( 2 )", [1.0, 1.0]),
        ("eye(3)", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        ("eye(2,3)", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    ],
)
def test_constructors(text: str, expected: object) -> None:
    assert_same(parse(text), expected)


def test_randn_is_seeded_by_rng() -> None:
    first = parse("randn(2,3)", rng=np.random.default_rng(42))
    again = parse("randn(2,3)", rng=np.random.default_rng(42))
    other = parse("randn(2,3)", rng=np.random.default_rng(43))
    # Independent truth: the same generator asked directly.
    assert_same(first, np.random.default_rng(42).standard_normal((2, 3)))
    assert_same(again, first)
    assert not np.array_equal(first, other)


def test_randn_float32_is_the_float64_draw_rounded() -> None:
    wide = np.random.default_rng(7).standard_normal(4)
    narrow = parse("randn(4)", rng=np.random.default_rng(7), dtype=np.float32)
    assert_same(narrow, wide.astype(np.float32), np.float32)


def test_randn_without_rng() -> None:
    a = parse("randn(5)")
    assert a.shape == (5,)
    assert np.isfinite(a).all()
    assert parse("randn()").shape == ()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("foo(3)", ["unknown constructor 'foo'", "arange", "eye", "linspace"]),
        ("Zeros(3)", ["unknown constructor 'Zeros'", "zeros"]),
        ("__import__(1)", ["unknown constructor '__import__'"]),
        ("arange(4)*2", ["malformed call"]),
        ("zeros((3))", ["malformed call"]),
        ("zeros(3", ["malformed call"]),
        ("zeros(2,)", ["empty argument"]),
        ("zeros(-1)", ["size must be a non-negative integer", "'-1'"]),
        ("zeros(2.5)", ["size must be a non-negative integer", "'2.5'"]),
        ("ones(a)", ["size must be a non-negative integer", "'a'"]),
        ("eye()", ["eye takes", "got 0 arguments"]),
        ("eye(1,2,3)", ["eye takes", "got 3 arguments"]),
        ("arange()", ["arange takes", "got 0 arguments"]),
        ("arange(1,2,3,4)", ["got 4 arguments"]),
        ("arange(0,1,0)", ["step must not be zero"]),
        ("arange(nan)", ["arange: non-finite value 'nan'"]),
        ("arange(x)", ["arange: 'x' is not a number"]),
        ("linspace(0,1)", ["linspace takes (start, stop, num), got 2"]),
        ("linspace(0,1,2.5)", ["size must be a non-negative integer"]),
        ("linspace(-1e308,1e308,5)", ["linspace: non-finite value"]),
        ("zeros(" + ",".join(["1"] * 33) + ")", ["more than 32 dimensions"]),
    ],
)
def test_constructor_refusals(text: str, fragments: list[str]) -> None:
    refused(text, *fragments)


# -- element limit --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "zeros(100000,100000)",
        "ones(10000000000)",
        "randn(100000,100000)",
        "eye(100000)",
        "zeros(" + "9" * 5000 + ")",
        "arange(1e12)",
        "arange(0,1,1e-300)",
        "arange(-1e308,1e308)",
        "linspace(0,1,100000000)",
        "linspace(0,1," + "9" * 5000 + ")",
    ],
)
def test_huge_constructors_refused_before_allocation(text: str) -> None:
    start = time.perf_counter()
    refused(text, "limit")
    # An attempt to allocate would take far longer (or raise MemoryError).
    assert time.perf_counter() - start < 0.5


def test_max_elements_boundary() -> None:
    assert parse("zeros(2,3)", max_elements=6).shape == (2, 3)
    refused("zeros(2,3)", "too many elements (6; the limit is 5)", max_elements=5)
    assert parse("1,2;3,4", max_elements=4).shape == (2, 2)
    refused("1,2;3,4", "too many elements", max_elements=3)
    refused("1,2,3", "too many elements", max_elements=2)
    refused("[[1,2],[3,4]]", "too many elements (more than 3)", max_elements=3)
    refused("arange(10)", "too many elements", max_elements=9)
    refused("linspace(0,1,10)", "limit of 9", max_elements=9)
    refused("eye(3)", "too many elements", max_elements=8)
    assert parse("7", max_elements=1).shape == ()


# -- files --------------------------------------------------------------------


def test_npy(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("m.npy", np.array([[1.5, -2.0], [0.0, 4.0]]))
    np.save("i.npy", np.arange(3))
    np.save("s.npy", np.float32(2.5))
    np.save("big_endian.npy", np.array([1.0, 2.0], dtype=">f8"))
    assert_same(parse("@m.npy"), [[1.5, -2.0], [0.0, 4.0]])
    assert_same(parse("@i.npy"), [0.0, 1.0, 2.0])
    assert_same(parse("@s.npy"), 2.5)
    assert_same(parse("@big_endian.npy"), [1.0, 2.0])
    assert_same(parse("@m.npy", dtype=np.float32), [[1.5, -2], [0, 4]], np.float32)
    assert_same(parse(f"@{tmp_path / 'i.npy'}"), [0.0, 1.0, 2.0])


def test_npy_refusals(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("nan.npy", np.array([1.0, np.nan]))
    np.save("inf.npy", np.array([[1.0, 2.0], [3.0, -np.inf]]))
    np.save("wide.npy", np.array([1e300]))
    np.save("bool.npy", np.array([True]))
    np.save("complex.npy", np.array([1 + 2j]))
    np.save("text.npy", np.array(["a"]))
    np.save("object.npy", np.array([{}], dtype=object), allow_pickle=True)
    np.save("big.npy", np.zeros(1000))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    whole = (tmp_path / "big.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(whole[:-16])
    refused("@nan.npy", "file 'nan.npy'", "non-finite value nan at index [1]")
    refused("@inf.npy", "non-finite value -inf at index [1, 1]")
    refused("@wide.npy", "1e+300", "overflows float32", dtype=np.float32)
    refused("@bool.npy", "bool", "not real numbers")
    refused("@complex.npy", "complex128", "not real numbers")
    refused("@text.npy", "not real numbers")
    refused("@object.npy", "object", "not real numbers")
    refused("@big.npy", "file 'big.npy'", "too many elements", max_elements=999)
    refused("@junk.npy", "not a .npy file")
    refused("@cut.npy", "damaged .npy file")


def test_csv(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "row.csv").write_text("1,2,3\n")
    (tmp_path / "m.csv").write_text("1, 2,3\n\n4,5 ,6\n\n")
    (tmp_path / "column.csv").write_text("1\n2\n")
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf1,2\r\n3,4\r\n")
    assert_same(parse("@row.csv"), [1.0, 2.0, 3.0])
    assert_same(parse("@m.csv"), [[1, 2, 3], [4, 5, 6]])
    assert_same(parse("@column.csv"), [[1.0], [2.0]])
    assert_same(parse("@excel.csv"), [[1.0, 2.0], [3.0, 4.0]])
    (tmp_path / "UPPER.CSV").write_text("1,2\n")
    assert_same(parse("@UPPER.CSV"), [1.0, 2.0])


def test_csv_refusals(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    (tmp_path / "late.csv").write_text("1,2\n\n3,zz\n")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "hole.csv").write_text("1,,2\n")
    (tmp_path / "blank.csv").write_text("\n  \n")
    (tmp_path / "nan.csv").write_text("1,nan\n")
    (tmp_path / "spaces.csv").write_text("1 2\n")
    (tmp_path / "latin1.csv").write_bytes(b"\xe91,2\n")
    refused("@header.csv", "file 'header.csv': line 1: 'a' is not a number", "header")
    message = refused("@late.csv", "line 3: 'zz' is not a number")
    assert "header" not in message
    refused("@ragged.csv", "ragged rows (line 2 has 1 value, line 1 has 2)")
    refused("@hole.csv", "line 1: empty item 2")
    refused("@blank.csv", "no numbers")
    refused("@nan.csv", "line 1: non-finite value 'nan'")
    refused("@spaces.csv", "'1 2' is not a number")
    refused("@latin1.csv", "not UTF-8")
    (tmp_path / "big.csv").write_text("1,2\n3,4\n")
    refused("@big.csv", "file 'big.csv'", "too many elements", max_elements=3)


def test_txt(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.txt").write_text("1 2\t3\n4,5 , 6\n")
    (tmp_path / "row.txt").write_text("  7   8  \n")
    (tmp_path / "hole.txt").write_text("1,,2\n")
    (tmp_path / "ragged.txt").write_text("1 2\n\n3 4 5\n")
    assert_same(parse("@m.txt"), [[1, 2, 3], [4, 5, 6]])
    assert_same(parse("@row.txt"), [7.0, 8.0])
    refused("@hole.txt", "line 1: empty item 2")
    refused("@ragged.txt", "ragged rows (line 3 has 3 values, line 1 has 2)")


def test_json_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text(json.dumps([[1, 2.5], [3, 4]], indent=2))
    (tmp_path / "s.json").write_text("3.5\n")
    (tmp_path / "ragged.json").write_text("[[1,2],\n[3]]")
    (tmp_path / "bad.json").write_text("[1,\n2,]")
    (tmp_path / "object.json").write_text('{"x": [1]}')
    assert_same(parse("@m.json"), [[1.0, 2.5], [3.0, 4.0]])
    assert_same(parse("@s.json"), 3.5)
    refused("@ragged.json", "file 'ragged.json'", "ragged array")
    refused("@bad.json", "invalid JSON", "line 2")
    refused("@object.json", "JSON objects are not numbers")


def test_file_refusals(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "data.xlsx").write_bytes(b"")
    refused("@missing.npy", "cannot read file 'missing.npy': No such file or directory")
    refused("@missing.csv", "cannot read file 'missing.csv'", "No such file")
    refused("@folder.csv", "cannot read file 'folder.csv'", "directory")
    refused("@data.xlsx", "'.xlsx'", ".npy, .csv, .json, .txt")
    refused("@noext", "no extension", ".npy")
    refused("@", "missing file name")
    refused("@a\x00.csv", "cannot read file")


# -- formatting and the round trip --------------------------------------------


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (28.0, "28"),
        (0.1, "0.1"),
        (1e-300, "1e-300"),
        (-0.0, "-0"),
        (1e16, "1e+16"),
        (-2.5, "-2.5"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (np.float64(3.0), "3"),
        (7, "7"),
    ],
)
def test_format_number(x: float, text: str) -> None:
    assert format_number(x) == text


@pytest.mark.parametrize(
    ("array", "text"),
    [
        (np.array(2.5), "2.5"),
        (np.array([0.0, 4.0, 8.0, 12.0]), "0,4,8,12"),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), "1,2;3,4"),
        (np.array([[1.0], [2.0]]), "1;2"),
        (np.array([7.0]), "[7]"),
        (np.array([[1.0, 2.0]]), "[[1,2]]"),
        (np.array([[[1.0, 2.0], [3.0, 4.0]]]), "[[[1,2],[3,4]]]"),
        (np.zeros(0), "[]"),
        (np.zeros((2, 0)), "[[],[]]"),
    ],
)
def test_format_value(array: np.ndarray, text: str) -> None:
    assert format_value(array) == text
    assert_same(parse(text), array)


def test_zero_size_shapes_lose_dimensions_after_the_first_zero() -> None:
    assert format_value(np.zeros((0, 3))) == "[]"
    assert parse(format_value(np.zeros((0, 3)))).shape == (0,)
    assert parse(format_value(np.zeros((2, 0, 3)))).shape == (2, 0)


finite64 = st.floats(allow_nan=False, allow_infinity=False)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
shapes = array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


@given(arrays(np.float64, shapes, elements=finite64))
def test_round_trip_float64(a: np.ndarray) -> None:
    back = parse(format_value(a))
    if 0 in a.shape:
        # Documented limit of nested-list text: nothing after an empty level.
        assert back.shape == a.shape[: a.shape.index(0) + 1]
        assert back.dtype == np.float64
    else:
        assert_same(back, a)


@given(arrays(np.float32, array_shapes(min_dims=0, max_dims=3), elements=finite32))
def test_round_trip_float32(a: np.ndarray) -> None:
    assert_same(parse(format_value(a), dtype=np.float32), a, np.float32)


PIECES = [
    *"0123456789-+.eE,;[]() @_\"{}:\t\n",
    "nan", "inf", "Infinity", "NaN", "true", "null",
    "arange", "linspace", "zeros", "ones", "randn", "eye", "foo",
    ".csv", ".npy", ".json", ".txt", "9" * 25, "1e999", "\x00", "١",
]  # fmt: skip


@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(PIECES), max_size=25).map("".join),
    )
)
def test_garbage_parses_or_raises_usage_error(text: str) -> None:
    try:
        result = parse(text, max_elements=1000, rng=np.random.default_rng(0))
    except UsageError as exc:
        assert str(exc).startswith("input x: ")
    else:
        assert result.dtype == np.float64
        assert result.size <= 1000
        assert np.isfinite(result).all()


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(values)
    assert tried > 0
    assert failures == 0


# -- reading a value file never reads past what could be accepted (issue 12, item 3) --
def _peak_while(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_endless_file_is_refused_after_one_chunk(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zero.txt").symlink_to("/dev/zero")  # NUL bytes forever, no newline

    def read():
        with pytest.raises(UsageError, match="longer than 400 characters"):
            parse("@zero.txt", max_elements=10**7)

    # 64 x max-elements characters (640 MB) were read before; now one chunk.
    assert _peak_while(read) < 16 * 2**20


def test_a_file_with_too_many_numbers_stops_at_the_limit(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "many.csv"
    path.write_text("1.5,2.5\n" * 2_000_000)  # 4 million numbers, 16 MB

    def read():
        with pytest.raises(UsageError, match="more than the limit, 1000"):
            parse("@many.csv", max_elements=1000)

    assert _peak_while(read) < 8 * 2**20


def test_a_file_just_within_the_limit_is_read_whole(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    n = 3 * values._CHUNK // 4  # items across several chunk boundaries
    (tmp_path / "v.txt").write_text(" ".join(["0.25"] * n) + "\n")  # one row
    assert_same(parse("@v.txt", max_elements=n), [0.25] * n)
    with pytest.raises(UsageError, match="more than the limit"):
        parse("@v.txt", max_elements=n - 1)


def test_running_out_of_memory_reading_a_file_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.csv").write_text("1,2\n")

    class Exhausted:
        def findall(self, text):
            raise MemoryError

    monkeypatch.setattr(values, "_ITEM", Exhausted())
    with pytest.raises(UsageError, match="too large for the memory"):
        parse("@v.csv")
