"""RFC 6902 diff (pure): our `diff`, replayed through the independent `jsonpatch` library.

Equality is checked on canonical JSON text, not with Python's `==`, which
equates 1, 1.0 and True and so would hide a patch that loses a type change.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimhub.protocol.patch import apply, diff, escape


def canonical(value: Any) -> bytes:
    """JSON text with sorted keys: equal exactly when the JSON values are equal."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def replay(old: Any, new: Any) -> list[dict[str, Any]]:
    """Diff `old` -> `new`, apply with jsonpatch, assert the result is `new`; returns the ops."""
    before = canonical(old)
    ops: list[dict[str, Any]] = diff(old, new)
    assert canonical(old) == before, "diff must not change its input"
    result = jsonpatch.apply_patch(old, ops)
    assert canonical(result) == canonical(new)
    assert canonical(old) == before, "apply must not change its input"
    return ops


# Keys include the characters RFC 6901 escapes ('~', '/') and pointer look-alikes ("0", "-", "").
keys = st.one_of(st.sampled_from(["", "0", "1", "-", "~", "/", "~1", "a/b", "~0~1", "id"]), st.text(max_size=6))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 0.0, -0.0, 1.0, True, False]),  # values Python's == confuses
    st.text(max_size=8),
)
json_trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_trees, json_trees)
def test_diff_of_random_trees_applies_to_the_new_tree(old: Any, new: Any) -> None:
    ops = replay(old, new)
    assert {op["op"] for op in ops} <= {"add", "remove", "replace"}


@settings(max_examples=100, deadline=None)
@given(json_trees)
def test_diff_of_a_tree_with_itself_is_empty(tree: Any) -> None:
    assert diff(tree, copy.deepcopy(tree)) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10_000), unique=True, max_size=20), st.data())
def test_list_insert_in_the_middle_is_one_add(items: list[int], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(items)))
    value = {"id": "new"}
    new = [*items[:index], value, *items[index:]]
    ops = replay({"slides": items}, {"slides": new})
    assert ops == [{"op": "add", "path": f"/slides/{index}", "value": value}]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10_000), unique=True, min_size=1, max_size=20), st.data())
def test_list_remove_in_the_middle_is_one_remove(items: list[int], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
    new = items[:index] + items[index + 1 :]
    ops = replay({"slides": items}, {"slides": new})
    assert ops == [{"op": "remove", "path": f"/slides/{index}"}]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10_000), unique=True, min_size=1, max_size=20), st.data())
def test_list_edit_in_place_is_one_replace_at_the_index(items: list[int], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
    old = [{"id": i, "title": "t"} for i in items]
    new = copy.deepcopy(old)
    new[index]["title"] = "edited"
    ops = replay(old, new)
    assert ops == [{"op": "replace", "path": f"/{index}/title", "value": "edited"}]


def test_several_removed_from_the_middle_go_highest_index_first() -> None:
    ops = replay([0, 1, 2, 3, 4, 5], [0, 4, 5])
    assert ops == [{"op": "remove", "path": "/3"}, {"op": "remove", "path": "/2"}, {"op": "remove", "path": "/1"}]


def test_several_inserted_in_the_middle_go_in_order() -> None:
    ops = replay([0, 5], [0, 1, 2, 5])
    assert ops == [{"op": "add", "path": "/1", "value": 1}, {"op": "add", "path": "/2", "value": 2}]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"c": [1, "a"]}, {"c": [True, "b"]}),  # the common-prefix scan must not swallow 1 -> True
        ({"c": [True, "a"]}, {"c": [1, "a"]}),
        ({"x": {"y": 1}}, {"x": {"y": 1.0}}),
        ({"x": [0.0]}, {"x": [-0.0]}),
        ({"x": [[False]]}, {"x": [[0]]}),
    ],
)
def test_type_changes_that_python_equality_hides_are_patched(old: Any, new: Any) -> None:
    assert replay(old, new) != []


def test_keys_are_escaped_as_rfc_6901_requires() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert escape("~1") == "~01"
    ops = replay({"a/b": 1, "~": 2}, {"a/b": 3, "~1": 4})
    assert {"op": "replace", "path": "/a~1b", "value": 3} in ops
    assert {"op": "remove", "path": "/~0"} in ops
    assert {"op": "add", "path": "/~01", "value": 4} in ops


def test_type_change_at_the_root_replaces_the_whole_document() -> None:
    assert replay({"a": 1}, [1]) == [{"op": "replace", "path": "", "value": [1]}]


def test_diff_under_a_path_prefixes_every_op() -> None:
    assert diff({"a": 1}, {"a": 2}, "/doc") == [{"op": "replace", "path": "/doc/a", "value": 2}]


def test_apply_copies_unless_asked_to_work_in_place() -> None:
    doc = {"a": [1, 2]}
    ops = [{"op": "add", "path": "/a/1", "value": 9}]
    assert apply(doc, ops) == {"a": [1, 9, 2]}
    assert doc == {"a": [1, 2]}
    apply(doc, ops, in_place=True)
    assert doc == {"a": [1, 9, 2]}


def test_apply_refuses_ops_that_do_not_fit() -> None:
    with pytest.raises(jsonpatch.JsonPatchException):
        apply({"a": 1}, [{"op": "remove", "path": "/b"}])
