"""The gateway's TOON encoder held against the TOON specification v3, rule by rule.

Each test names the encode-side rule of the spec (section numbers of SPEC.md v3.0,
https://github.com/toon-format/spec) and gives the exact text a conforming encoder writes.
Round trips through a decoder are checked too, but they are not enough: a decoder may
accept more than v3 (``toon_format`` 1.2 implements a later draft and reads nested field
groups such as ``a[2]{x,y{z}}:``, keyed tables ``a[2:]{p,q}:``, ``key: []`` and exponents,
none of which is v3), so the text itself is compared.

Where the spec lets an encoder choose (a string MAY be written bare when no rule asks for
quotes), this encoder quotes in three more cases, named in ``test_quoting_beyond_the_musts``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import toon_format
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.toon import encode


def lines(*text: str) -> str:
    return "\n".join(text)


# --- §2 data model: numbers in canonical decimal form ----------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (42, "42"),
        (-7, "-7"),
        (3.14, "3.14"),
        (1.0, "1"),  # a zero fraction is an integer
        (1.5000, "1.5"),  # no trailing zeros
        (-0.0, "0"),  # -0 is 0
        (1e6, "1000000"),  # no exponent ...
        (1e21, "1000000000000000000000"),  # ... however large
        (1e-6, "0.000001"),  # ... or small
        (1.5e-7, "0.00000015"),
        (-2.5e-10, "-0.00000000025"),
        (0.1 + 0.2, "0.30000000000000004"),  # enough digits to come back as the same float
        (1 / 3, "0.3333333333333333"),
        (9007199254740993, "9007199254740993"),  # integers keep every digit
        (10**30, "1000000000000000000000000000000"),
        (2.0**70, "1180591620717411303424"),  # an integral float: its exact digits
    ],
)
def test_numbers_canonical_decimal_form(number: float, text: str) -> None:
    """§2: no exponent, no leading zeros, no trailing fractional zeros, -0 -> 0, and enough
    precision that decoding gives the number back."""
    assert encode({"n": number}) == f"n: {text}"
    assert encode(number) == text
    assert toon_format.decode(text) == number


# --- §3 normalization ------------------------------------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_become_null(number: float) -> None:
    """§3: NaN, +Infinity and -Infinity are null, wherever they stand."""
    assert encode({"n": number}) == "n: null"
    assert encode([number, 1]) == "[2]: null,1"
    assert encode([{"a": number}, {"a": 2}]) == lines("[2]{a}:", "  null", "  2")


def test_literals() -> None:
    """§2: true, false and null are bare literals."""
    assert encode({"t": True, "f": False, "z": None}) == lines("t: true", "f: false", "z: null")
    assert encode([True, False, None]) == "[3]: true,false,null"


# --- §7.1 escaping ---------------------------------------------------------------------------


def test_escapes_only_the_five_characters() -> None:
    """§7.1: inside quotes exactly backslash, double quote, LF, CR and tab are escaped;
    decoders must reject any other escape, so other characters stay literal (no \\uXXXX)."""
    value = 'a\\b"c\nd\re\tf'
    assert encode({"s": value}) == 's: "a\\\\b\\"c\\nd\\re\\tf"'
    control = "a\x01b\x7fc"
    assert encode({"s": control}) == f's: "{control}"'
    assert toon_format.decode(encode({"s": control})) == {"s": control}


# --- §7.2 quoting of string values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        (" a", "leading whitespace"),
        ("a ", "trailing whitespace"),
        ("\u00a0a", "leading whitespace (no-break space)"),
        ("\ufeffa", "leading U+FEFF, which a decoder would drop as a byte-order mark"),
        ("true", "equals a literal"),
        ("false", "equals a literal"),
        ("null", "equals a literal"),
        ("42", "numeric-like"),
        ("-3.14", "numeric-like"),
        ("1e-6", "numeric-like"),
        ("1E+9", "numeric-like (case-insensitive)"),
        ("05", "leading-zero decimal"),
        ("a:b", "colon"),
        ('say "hi"', "double quote"),
        ("C\\dir", "backslash"),
        ("[x]", "bracket"),
        ("a]", "bracket"),
        ("{k}", "brace"),
        ("a\nb", "newline"),
        ("a\rb", "carriage return"),
        ("a\tb", "tab"),
        ("a,b", "the document delimiter (comma)"),
        ("-", "a hyphen alone"),
        ("- item", "starts with a hyphen"),
        ("-x", "starts with a hyphen"),
    ],
)
def test_strings_that_must_be_quoted(value: str, why: str) -> None:
    """§7.2: every case in which a string value MUST be quoted."""
    quoted = json.dumps(value, ensure_ascii=False)  # same text: none needs a JSON-only escape
    assert encode({"s": value}) == f"s: {quoted}", why
    assert encode([value]) == f"[1]: {quoted}", why
    assert toon_format.decode(encode({"s": value})) == {"s": value}


@pytest.mark.parametrize(
    "value",
    ["hello", "Ada_99", "a b", "café", "你好", "hello 👋 world", "a-b", "x.y", "a#b", "1.2.3"],
)
def test_strings_that_stay_bare(value: str) -> None:
    """§7.2: otherwise a string is written without quotes (inner spaces, Unicode, an inner
    hyphen or ``#`` are fine)."""
    assert encode({"s": value}) == f"s: {value}"
    assert encode(value) == value


def test_quoting_beyond_the_musts() -> None:
    """Where §7.2 allows either, this encoder also quotes: a numeric-like string with a
    leading ``+`` (JSON and host number parsers read it as a number), any string with a C0
    control character or DEL (§15 asks for control characters to be quoted), and a string
    starting with ``#``: v3 has no comments, but later drafts do, and their decoders (such
    as ``toon_format``'s) skip a line that starts with one, a table row or list item too."""
    assert encode({"s": "+1"}) == 's: "+1"'
    assert encode({"s": "#tag"}) == 's: "#tag"'
    assert encode(["#", "a"]) == '[2]: "#",a'
    assert encode([{"a": "#x"}, {"a": "y"}]) == lines("[2]{a}:", '  "#x"', "  y")
    assert toon_format.decode(encode(["#x"])) == ["#x"]
    assert toon_format.decode(encode("#")) == "#"
    assert encode({"s": "+1.5e3"}) == 's: "+1.5e3"'
    assert encode({"s": "a\x00b"}) == 's: "a\x00b"'


def test_delimiter_aware_quoting() -> None:
    """§7.2, §11.1: a string is quoted for the delimiter in force; the others are plain."""
    assert encode({"s": "a|b", "t": "a,b"}, delimiter="|") == lines('s: "a|b"', "t: a,b")
    assert encode(["a|b", "a,b"], delimiter="|") == '[2|]: "a|b"|a,b'
    assert encode(["a\tb", "a,b"], delimiter="\t") == '[2\t]: "a\\tb"\ta,b'


# --- §7.3 keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("name", "name"),
        ("_private", "_private"),
        ("user.name", "user.name"),  # dots are allowed, and never folded or expanded
        ("a1_b2", "a1_b2"),
        ("my-key", '"my-key"'),
        ("1st", '"1st"'),
        ("a b", '"a b"'),
        ("", '""'),
        ("é", '"é"'),  # ASCII identifiers only
        ("a:b", '"a:b"'),
        ('q"k', '"q\\"k"'),
        ("line\nbreak", '"line\\nbreak"'),
    ],
)
def test_keys(key: str, text: str) -> None:
    """§7.3: a key is bare only when it matches ``^[A-Za-z_][A-Za-z0-9_.]*$``, otherwise
    quoted and escaped, in every place it appears (fields, array headers, field lists)."""
    assert encode({key: 1}) == f"{text}: 1"
    assert encode({key: [1, 2]}) == f"{text}[2]: 1,2"
    assert encode({"t": [{key: 1}, {key: 2}]}) == lines(f"t[2]{{{text}}}:", "  1", "  2")
    assert toon_format.decode(encode({key: 1})) == {key: 1}


# --- §8 objects --------------------------------------------------------------------------------


def test_objects() -> None:
    """§8: ``key: value`` with one space; a nested object is ``key:`` with its fields one
    level deeper; an empty one is ``key:`` alone; encounter order is kept."""
    value = {"z": 1, "user": {"id": 7, "tags": {"a": "x"}}, "empty": {}, "a": "end"}
    assert encode(value) == lines(
        "z: 1", "user:", "  id: 7", "  tags:", "    a: x", "empty:", "a: end"
    )


def test_object_fields_never_become_tables() -> None:
    """§8: an object of objects is nested objects; v3 has no keyed-table form (a later
    draft's ``key[N:]{fields}:`` is not v3)."""
    value = {"a": {"x": {"p": 1, "q": 2}, "y": {"p": 3, "q": 4}}}
    assert encode(value) == lines(
        "a:", "  x:", "    p: 1", "    q: 2", "  y:", "    p: 3", "    q: 4"
    )


# --- §9.1 primitive arrays ---------------------------------------------------------------------


def test_primitive_arrays_inline() -> None:
    """§9.1: ``key[N]: v1,v2`` with one space after the colon, values quoted as in §7.2."""
    assert encode({"tags": ["a", "b c", 1, True, None, ""]}) == 'tags[6]: a,b c,1,true,null,""'


def test_empty_arrays() -> None:
    """§9.1: an empty array is ``key[0]:`` with nothing after the colon (never ``key: []``);
    at the root ``[0]:``; as a list item ``- [0]:`` (§9.2)."""
    assert encode({"items": []}) == "items[0]:"
    assert encode([]) == "[0]:"
    assert encode([[], [1]]) == lines("[2]:", "  - [0]:", "  - [1]: 1")
    assert encode({"o": [{"a": []}]}) == lines("o[1]:", "  - a[0]:")


# --- §9.2 arrays of arrays ---------------------------------------------------------------------


def test_arrays_of_primitive_arrays() -> None:
    """§9.2: ``key[N]:`` then one ``- [M]: ...`` list item per inner array."""
    assert encode({"pairs": [[1, 2], ["a", "b,c"]]}) == lines(
        "pairs[2]:", "  - [2]: 1,2", '  - [2]: a,"b,c"'
    )


def test_arrays_of_arrays_of_objects() -> None:
    """§9.4: an inner array that is not all primitives is ``- [M]:`` with its items one
    level deeper; a keyless list item never carries a field list."""
    assert encode([[{"a": 1}, {"a": 2}], [[3]]]) == lines(
        "[2]:", "  - [2]:", "    - a: 1", "    - a: 2", "  - [1]:", "    - [1]: 3"
    )


# --- §9.3 tabular arrays -----------------------------------------------------------------------


def test_tabular_arrays() -> None:
    """§9.3: all elements objects with the same keys and only primitive values: a header
    with the field list in the first object's order, then one row per object (values in
    that order even when an object lists its keys in another)."""
    value = {
        "users": [{"id": 1, "name": "Ada", "ok": True}, {"name": "Bob, Jr", "ok": None, "id": 2}]
    }
    assert encode(value) == lines("users[2]{id,name,ok}:", "  1,Ada,true", '  2,"Bob, Jr",null')


def test_root_tabular_array() -> None:
    """§9.3: a root table omits the key."""
    assert encode([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]) == lines("[2]{a,b}:", "  1,x", "  2,y")


def test_objects_with_nested_values_are_a_list_not_a_table() -> None:
    """§9.3 (the defect of issue 14): a table only when ALL values are primitives. Objects
    holding an array or an object are a list (§9.4, §10), never a header with nested field
    groups such as ``a[2]{x,y{z}}:``, which v3 does not have."""
    nested_object = {"a": [{"x": 1, "y": {"z": 1}}, {"x": 2, "y": {"z": 2}}]}
    assert encode(nested_object) == lines(
        "a[2]:", "  - x: 1", "    y:", "      z: 1", "  - x: 2", "    y:", "      z: 2"
    )
    nested_array = {"a": [{"x": 1, "y": [1, 2]}, {"x": 2, "y": []}]}
    assert encode(nested_array) == lines(
        "a[2]:", "  - x: 1", "    y[2]: 1,2", "  - x: 2", "    y[0]:"
    )
    one_nested = [{"x": 1, "y": 2}, {"x": 3, "y": {"k": "v"}}]
    assert encode(one_nested) == lines(
        "[2]:", "  - x: 1", "    y: 2", "  - x: 3", "    y:", "      k: v"
    )


def test_objects_with_different_keys_are_a_list() -> None:
    """§9.3: different key sets, or an empty object, rule the table out."""
    assert encode([{"a": 1}, {"b": 2}]) == lines("[2]:", "  - a: 1", "  - b: 2")
    assert encode([{"a": 1}, {"a": 1, "b": 2}]) == lines("[2]:", "  - a: 1", "  - a: 1", "    b: 2")
    assert encode([{}, {}]) == lines("[2]:", "  -", "  -")


# --- §9.4 mixed arrays -------------------------------------------------------------------------


def test_mixed_arrays() -> None:
    """§9.4: a list item per element: ``- primitive``, ``- [M]: ...``, an object per §10."""
    assert encode({"items": [1, "a: b", [2, 3], {"k": "v"}, {}]}) == lines(
        "items[5]:", "  - 1", '  - "a: b"', "  - [2]: 2,3", "  - k: v", "  -"
    )


# --- §10 objects as list items -----------------------------------------------------------------


def test_object_list_item_first_field_on_the_hyphen_line() -> None:
    """§10: the first field on the hyphen line, the others one level deeper; a nested
    object as first field has its fields two levels below the hyphen."""
    value = [{"id": 1, "meta": {"a": 1}, "tags": ["x"]}, {"meta": {"a": 2}, "id": 2}]
    assert encode(value) == lines(
        "[2]:",
        "  - id: 1",
        "    meta:",
        "      a: 1",
        "    tags[1]: x",
        "  - meta:",
        "      a: 2",
        "    id: 2",
    )


def test_object_list_item_whose_first_field_is_a_table() -> None:
    """§10 (v3.0): ``- key[N]{fields}:`` on the hyphen line, rows two levels deeper than the
    hyphen, the object's other fields one level deeper."""
    value = {"items": [{"users": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}], "status": "ok"}]}
    assert encode(value) == lines(
        "items[1]:", "  - users[2]{id,n}:", "      1,a", "      2,b", "    status: ok"
    )


def test_object_list_item_whose_first_field_is_a_list() -> None:
    """§10, §9.4: a list as the first field: its items two levels below the hyphen."""
    value = [{"l": [{"a": 1}, {"b": 2}], "z": 0}]
    assert encode(value) == lines("[1]:", "  - l[2]:", "      - a: 1", "      - b: 2", "    z: 0")


# --- §6, §11 headers and delimiters ------------------------------------------------------------


def test_headers_declare_the_delimiter() -> None:
    """§6, §11: comma is implicit; tab and pipe stand inside the brackets and separate the
    field list, the rows and inline values."""
    value = {"t": [{"a": 1, "b": "x y"}, {"a": 2, "b": "p|q"}], "v": [1, 2]}
    assert encode(value, delimiter="|") == lines(
        "t[2|]{a|b}:", "  1|x y", '  2|"p|q"', "v[2|]: 1|2"
    )
    assert encode(value, delimiter="\t") == lines(
        "t[2\t]{a\tb}:", "  1\tx y", "  2\tp|q", "v[2\t]: 1\t2"
    )
    assert encode([[1, 2]], delimiter="|") == lines("[1|]:", "  - [2|]: 1|2")


# --- §12 indentation and whitespace ------------------------------------------------------------


def test_indentation_and_whitespace() -> None:
    """§12: a fixed number of spaces per level (2 unless configured), no tabs, one space
    after ``:`` before a value, no trailing spaces, no trailing newline."""
    value = {"a": {"b": [{"c": 1}, {"d": [1]}]}}
    assert encode(value) == lines("a:", "  b[2]:", "    - c: 1", "    - d[1]: 1")
    assert encode(value, indent=4) == lines(
        "a:", "    b[2]:", "        - c: 1", "        - d[1]: 1"
    )


# --- §5 root forms -----------------------------------------------------------------------------


def test_root_forms() -> None:
    """§5, §8: an object is its fields; an empty object is an empty document; an array
    starts with its keyless header; a primitive is the one token."""
    assert encode({"a": 1}) == "a: 1"
    assert encode({}) == ""
    assert encode([1, "x"]) == "[2]: 1,x"
    assert encode("hello") == "hello"
    assert encode("a,b") == '"a,b"'
    assert encode(None) == "null"
    assert encode(2.5) == "2.5"


# --- every rule at once, over generated JSON ---------------------------------------------------

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_HEADER = re.compile(r'(?:- )?(?:""|[A-Za-z_][A-Za-z0-9_.]*)?\[[0-9]+[|\t]?\]')
_AFTER_HEADER = re.compile(r"(?::|: .+|\{[^{}\[\]:]+\}:)")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)
uniform_tables = st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.lists(
        st.fixed_dictionaries({f"k{i}": json_values for i in range(width)}), min_size=1, max_size=4
    )
)


def _check_v3_text(text: str) -> None:
    assert not text.endswith("\n")
    for line in text.split("\n"):
        assert line == line.rstrip(" "), f"trailing space: {line!r}"
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0 and not line[indent:].startswith("\t"), f"indentation: {line!r}"
        bare = _QUOTED.sub('""', line[indent:])  # the structure, outside quoted tokens
        if "[" in bare:  # a bracket outside quotes is a header's, and only §6's forms exist
            header = _HEADER.match(bare)
            assert header, f"not a v3 header: {line!r}"
            # then ":", ": values" or a field list of keys only (no nested group, no
            # keyed table "[N:]", no "key: []")
            assert _AFTER_HEADER.fullmatch(bare[header.end() :]), f"not a v3 header: {line!r}"
            assert "[" not in bare[header.end() :], f"two headers on a line: {line!r}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, uniform_tables, st.dictionaries(st.text(max_size=5), uniform_tables)))
def test_generated_json_is_v3_and_comes_back(value: Any) -> None:
    """Any JSON value: the text keeps §6/§9.3's header grammar (a field list holds keys
    only), §12's whitespace, and decodes (strictly) to the value."""
    text = encode(value)
    _check_v3_text(text)
    assert toon_format.decode(text) == value


def test_tables_have_primitive_rows_only() -> None:
    """Every row of every table holds exactly as many primitive cells as its header names."""
    value = {"rows": [{"a": 1, "b": [1]}, {"a": 2, "b": [2]}], "ok": [{"a": 1}, {"a": 2}]}
    text = encode(value)
    _check_v3_text(text)
    assert "rows[2]{" not in text
    assert "ok[2]{a}:" in text
