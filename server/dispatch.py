"""Requests from any connection, routed: authorize, run, count.

The WebSocket session and the HTTP endpoints hand every mutate, query and
subscribe request to one `Dispatcher`, so authorization and the outcome
metrics are the same whichever way a request arrives. It holds no state of
its own; create_app builds it from the parts it routes to.
"""

from __future__ import annotations

from typing import Any

from cimhub.protocol.errors import CimhubError
from cimhub.protocol.messages import ADD_MESSAGE
from cimhub.protocol.mutations import MUTATIONS, MutationContext, MutationSpec, get_mutation
from cimhub.server.auth.authorizer import Authorizer
from cimhub.server.messages.ops import MessageOps
from cimhub.server.metrics import Metrics
from cimhub.server.store.engine import CommitResult, DealChanged, MutationEngine
from cimhub.server.store.history_queries import HistoryQueries
from cimhub.server.store.queries import Queries

# Mutation names counted under their own label; anything else is "unknown", so
# a client cannot grow the metric's cardinality by inventing names.
_KNOWN_NAMES = frozenset(MUTATIONS) | {ADD_MESSAGE}


def actor_of(identity: Any) -> str:
    """How the patch log names who did something."""
    if not identity.is_service:
        return str(identity.user_id)
    return f"service:{identity.role}" + (f"/{identity.user_id}" if identity.user_id else "")


def cim_of(identity: Any, name: str, args: Any, mutation_id: str) -> str:
    """The CIM a mutation request will change, told from its raw arguments without validating them.

    A connection keeps its mutations of one CIM in the order sent by this key
    (cimhub.server.hub.session). A mutation that makes a CIM is asked its own
    `target` (a `create`'s id is derived from its actor and mutation id); the
    others change the CIM their `cimId` names. Arguments too broken to tell
    give "": such a request fails validation when it runs, and all of them
    share one order.
    """
    if not isinstance(args, dict):
        return ""
    spec = MUTATIONS.get(name)
    if spec is None or not spec.creates:
        # addMessage, an unknown name (refused when it runs), or a mutation of the CIM its
        # `cimId` names (tests/test_hub_pipelining.py holds every such spec to that).
        cim_id = args.get("cimId")
        return cim_id if isinstance(cim_id, str) else ""
    ctx = MutationContext(actor=actor_of(identity), now=0, mutation_id=mutation_id, user_id=identity.user_id)
    try:
        # model_construct: no validation (the mutation validates when it runs), just attribute access.
        target = spec.target(spec.args.model_construct(**args), ctx)
    except (AttributeError, TypeError, ValueError):
        return ""
    return target if isinstance(target, str) else ""


class Dispatcher:
    """Authorizes and runs mutations, queries and topic subscriptions; counts their outcomes."""

    def __init__(
        self,
        *,
        engine: MutationEngine,
        queries: Queries,
        message_ops: MessageOps,
        authorizer: Authorizer,
        metrics: Metrics,
        history: HistoryQueries | None = None,
    ) -> None:
        self.engine = engine
        self.queries = queries
        self.message_ops = message_ops
        self.history = history
        self.authorizer = authorizer
        self.metrics = metrics

    async def authorize_topic(self, identity: Any, kind: str, ident: str) -> None:
        """Raise AccessDenied / NotFound unless `identity` may watch topic `kind:ident`."""
        if kind == "deal":
            await self.authorizer.require_deal(identity, ident)
        else:
            await self.authorizer.require_cim(identity, ident)

    async def query(self, identity: Any, name: str, args: Any) -> Any:
        """Run query `name` for `identity`; the result is JSON data."""
        if name in self.message_ops.QUERIES:
            return await self.message_ops.query(identity, name, args)
        if self.history is not None and name in self.history.QUERIES:
            return await self.history.query(identity, name, args)
        return await self.queries.run(identity, name, args)

    async def mutate(
        self, identity: Any, name: str, args: Any, mutation_id: str, expected_revision: int | None
    ) -> CommitResult:
        """Validate, authorize and run one mutation exactly once under `mutation_id`."""
        outcome = "error"
        try:
            if name == ADD_MESSAGE:
                # Not a document mutation: the conversation is its own log, idempotent by message id.
                result = await self.message_ops.add(identity, args, mutation_id)
            else:
                spec = get_mutation(name)
                parsed = spec.parse_args(args)
                try:
                    result = await self._run(identity, spec, parsed, mutation_id, expected_revision)
                except DealChanged:
                    # The authorizer's remembered deal was wrong (the id was deleted and created again
                    # under another deal): forget it and decide again from what Redis holds now.
                    self.authorizer.forget(parsed.cimId)
                    result = await self._run(identity, spec, parsed, mutation_id, expected_revision)
            outcome = "duplicate" if result.duplicate else "committed"
            return result
        except CimhubError as exc:
            outcome = exc.code.value
            raise
        finally:
            self.metrics.mutations.labels(name if name in _KNOWN_NAMES else "unknown", outcome).inc()

    async def _run(
        self, identity: Any, spec: MutationSpec[Any], parsed: Any, mutation_id: str, expected_revision: int | None
    ) -> CommitResult:
        deal = await self.authorizer.require_mutation(identity, spec, parsed)
        return await self.engine.run(
            spec,
            parsed,
            actor=actor_of(identity),
            mutation_id=mutation_id,
            expected_revision=expected_revision,
            user_id=identity.user_id,
            authorized_deal=deal,
        )
