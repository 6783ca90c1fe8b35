"""The CIM Builder's mutations as pure functions: (document, args, context) -> outcome.

Nothing here touches Redis or the clock: the engine (cimhub.server.store.engine) loads
the document, calls the function with `MutationContext.now`, turns what it
changed into a patch (`finalize`) and commits it atomically. Because the
functions are pure the engine can re-run them after a revision conflict, and
the rules can be tested without servers.

A function edits the `Cim` it is given in place and records every edit inside
a field with `Cim.touch` (assignments record themselves): the patch is built
from the touched parts only. The engine hands it a model that nobody else
reads until the commit lands, and drops the model if anything fails.

The package follows the CIM Builder's workflow:

* `spec`: what a mutation is (arguments, context, outcome, `MutationSpec`);
* `lifecycle`: create, importFromSupabase, restoreRevision, delete;
* `workflow`: updateState, navigateToStage, saveBuyerPersona, saveHeroContext;
* `outline`: createOutline, and each section's progress derived from its slides;
* `slides`: updateSlide, navigateToSlide;
* `registry`: every mutation by name (`MUTATIONS`, `get_mutation`);
* `commit`: a mutation's outcome as committed (`finalize`: next revision and patch).
"""

from __future__ import annotations

from .commit import Stamped, finalize
from .lifecycle import derived_cim_id, imported_cim_id
from .registry import MUTATIONS, get_mutation
from .spec import Access, Args, CimArgs, MutationContext, MutationSpec, Outcome

__all__ = [
    "MUTATIONS",
    "Access",
    "Args",
    "CimArgs",
    "MutationContext",
    "MutationSpec",
    "Outcome",
    "Stamped",
    "derived_cim_id",
    "finalize",
    "get_mutation",
    "imported_cim_id",
]
