"""RFC 6902 JSON Patch between two versions of a CIM document.

`diff` is written here rather than taken from `jsonpatch.make_patch` because
it runs on every commit: it compares with `==` (C speed on unchanged subtrees),
emits only add/remove/replace (no move/copy, which every client must then
support), and handles the one list shape CIMs have (slides and outline sections
inserted, removed or edited in place) by trimming the common prefix and suffix,
so a one-slide edit is one small op instead of a rewritten array. `apply` uses
the `jsonpatch` library, an independent implementation that the property tests
replay our patches through.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson

JsonOp = dict[str, Any]


def escape(token: str) -> str:
    """Escape one path token as RFC 6901 §4 requires ('~' first, then '/')."""
    return token.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[JsonOp]:
    """The ops that turn `old` into `new`. Both must be JSON data (dict, list, str, ...)."""
    ops: list[JsonOp] = []
    _diff(old, new, path, ops)
    return ops


def _same(old: Any, new: Any) -> bool:
    """JSON equality: like `==` but 1, 1.0 and True (and 0.0, -0.0) are different values.

    Python's `==` equates them inside lists and dicts, which would drop a change
    such as ``[1, "a"] -> [True, "b"]`` from the patch. Where `==` holds on a
    container or float, the JSON texts decide (orjson, C speed).
    """
    if old is new:
        return True
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(old, (str, int)) or old is None:
        return True  # exact within one type (bool is an int subclass, and its type was compared)
    return orjson.dumps(old) == orjson.dumps(new)


def _diff(old: Any, new: Any, path: str, ops: list[JsonOp]) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in new.items():
            sub = f"{path}/{escape(key)}"
            if key in old:
                _diff(old[key], value, sub, ops)
            else:
                ops.append({"op": "add", "path": sub, "value": value})
        return
    if isinstance(old, list) and isinstance(new, list):
        _diff_list(old, new, path, ops)
        return
    ops.append({"op": "replace", "path": path, "value": new})


def _diff_list(old: list[Any], new: list[Any], path: str, ops: list[JsonOp]) -> None:
    n_old, n_new = len(old), len(new)
    prefix = 0
    limit = min(n_old, n_new)
    while prefix < limit and _same(old[prefix], new[prefix]):
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and _same(old[n_old - 1 - suffix], new[n_new - 1 - suffix]):
        suffix += 1
    old_mid = n_old - prefix - suffix
    new_mid = n_new - prefix - suffix
    # Edit in place the positions both sides have, then remove or add the rest.
    common = min(old_mid, new_mid)
    for i in range(prefix, prefix + common):
        _diff(old[i], new[i], f"{path}/{i}", ops)
    if old_mid > new_mid:
        # Remove from the highest index down so earlier indexes stay valid.
        for i in range(prefix + old_mid - 1, prefix + common - 1, -1):
            ops.append({"op": "remove", "path": f"{path}/{i}"})
    else:
        for i in range(prefix + common, prefix + new_mid):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": new[i]})


def apply(document: Any, ops: list[JsonOp], *, in_place: bool = False) -> Any:
    """Apply RFC 6902 ops; raises `jsonpatch.JsonPatchException` if they do not fit."""
    return jsonpatch.apply_patch(document, ops, in_place=in_place)
