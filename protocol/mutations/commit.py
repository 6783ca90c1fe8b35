"""A mutation's outcome in its committed form: the next revision and the patch to it.

The engine calls `finalize` once a mutation has run; the patch is built from
the parts of the document the mutation touched (`Cim.touch`), not from a diff
of the whole document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..patch import JsonOp, diff
from ..schema import CIM_FIELDS, Cim, Touched


@dataclass(frozen=True)
class Stamped:
    """A mutation's result as it is committed: JSON data at its new revision, and the patch to it."""

    doc: dict[str, Any]
    ops: list[JsonOp]

    @property
    def revision(self) -> int:
        return int(self.doc["revision"])


def finalize(base: dict[str, Any] | None, new: Cim, now: int) -> Stamped | None:
    """Turn the mutated `new` into its committed form; None when it equals `base` (a no-op).

    `base` is the stored document (JSON data) the mutation ran on, None for a
    create; it is not modified. Moves a draft to in_progress once real work
    starts and derives the RFC 6902 patch from the parts of `new` the mutation
    touched: the ops are exactly those `patch.diff(base, new document)` gives,
    computed without dumping or comparing the untouched rest. Stamps the next
    revision and `updatedAt` on the document and on `new`, and clears its
    record of edits, so `new` can serve as the base of the next mutation.
    """
    if new.status == "draft" and (new.stage != "welcome" or new.buyerPersona is not None):
        new.status = "in_progress"
    touched = new.take_touched()
    if base is None:
        doc = new.to_json_dict()
        doc["revision"] = 1
        doc["updatedAt"] = now
        _stamp(new, 1, now)
        return Stamped(doc, [{"op": "replace", "path": "", "value": doc}])
    # The stamps are not the mutation's to change, so an edit which changes nothing is a no-op.
    touched.pop("revision", None)
    touched.pop("updatedAt", None)
    ops, doc = _touched_changes(base, new, touched)
    if not ops:
        return None
    doc["revision"] = base["revision"] + 1
    doc["updatedAt"] = now
    ops.append({"op": "replace", "path": "/revision", "value": doc["revision"]})
    ops.append({"op": "replace", "path": "/updatedAt", "value": now})
    _stamp(new, doc["revision"], now)
    return Stamped(doc, ops)


def _stamp(cim: Cim, revision: int, now: int) -> None:
    cim.revision, cim.updatedAt = revision, now
    cim.take_touched()


def _touched_changes(base: dict[str, Any], new: Cim, touched: Touched) -> tuple[list[JsonOp], dict[str, Any]]:
    """The patch from `base` to `new` over the touched parts, and the new document.

    The order of the ops is the one `diff` gives for the whole document: the
    removed fields first, then the rest in the model's field order. The new
    document shares every untouched part with `base` (neither is ever edited in
    place once built).
    """
    fields = [name for name in CIM_FIELDS if name in touched]
    whole = {name for name in fields if touched[name] is None}
    dumped = new.model_dump(mode="json", exclude_none=True, include=whole) if whole else {}
    doc = dict(base)
    added = False
    ops: list[JsonOp] = []
    for name in fields:
        if name in whole and name not in dumped and name in base:
            ops.append({"op": "remove", "path": f"/{name}"})
            del doc[name]
    for name in fields:
        indexes = touched[name]
        if indexes is not None:
            items = getattr(new, name)
            value = list(base[name])
            for index in sorted(indexes):
                item = items[index].model_dump(mode="json", exclude_none=True)
                if index < len(value):
                    ops.extend(diff(value[index], item, f"/{name}/{index}"))
                    value[index] = item
                else:
                    ops.append({"op": "add", "path": f"/{name}/{index}", "value": item})
                    value.append(item)
            doc[name] = value
        elif name in dumped:
            if name in base:
                ops.extend(diff(base[name], dumped[name], f"/{name}"))
            else:
                ops.append({"op": "add", "path": f"/{name}", "value": dumped[name]})
                added = True
            doc[name] = dumped[name]
    if added:  # keep the fields in the model's order, as a whole dump has them
        doc = {name: doc[name] for name in CIM_FIELDS if name in doc}
    return ops, doc
