"""The CIM Builder's data model: the seed's `cims`, `messages` and `checkpoints` tables.

Field names keep the seed's camelCase because they are the wire and storage
format that browsers read. Every model forbids unknown fields, so a typo in a
mutation's arguments is an `invalid_args` error and never silently dropped.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Stage = Literal["welcome", "buyer_persona", "hero_concept", "outline", "building_sections"]
STAGES: tuple[Stage, ...] = ("welcome", "buyer_persona", "hero_concept", "outline", "building_sections")

CimStatus = Literal["draft", "in_progress", "complete"]
SlideStatus = Literal["draft", "needs_review", "approved"]
SectionStatus = Literal["pending", "in_progress", "complete"]
MessageRole = Literal["user", "assistant"]

# Ids are opaque strings chosen by Supabase (deals, projects, users) or by cimhub
# (CIMs, slides). They appear inside Redis key names and channels, so braces,
# whitespace and control characters are refused (a full match: \Z, not $, which
# would let a trailing newline through).
ID_CHARS = r"[A-Za-z0-9_.:@\-]"
MAX_ID_CHARS = 128
_ID = re.compile(rf"\A{ID_CHARS}{{1,{MAX_ID_CHARS}}}\Z")
_UUID = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HEX = frozenset("0123456789abcdefABCDEF")


def checked_id(value: str) -> str:
    """`value` if it is an id: 1 to 128 of A-Z a-z 0-9 _ . : @ -, a full match. Raises ValueError."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(
            f"an id is 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . : @ - (no spaces or control characters)"
        )
    return value


def canonical_id(value: str) -> str:
    """The one spelling of a Supabase id (deal, project, user): uuids lower-cased, Postgres aliases refused.

    Supabase's deal, project and user ids are Postgres uuids, which Postgres
    compares by value: ``A0EE...`` and ``a0ee...`` are one deal. In Redis they
    would be two keys and two channels, so a CIM filed under one spelling would
    be invisible to subscribers of the other. These ids therefore have exactly
    one accepted spelling. Ids cimhub or its clients choose (CIMs, slides,
    messages) are opaque and only checked (:func:`checked_id`). Raises ValueError.
    """
    checked_id(value)
    if _UUID.match(value):
        return value.lower()
    bare = value.replace("-", "")
    if len(bare) == 32 and _HEX.issuperset(bare):
        # Postgres also reads 32 hex digits, or hyphens every 4, as a uuid: one spelling only.
        raise ValueError("a uuid must be written as 8-4-4-4-12 hex digits")
    return value


# The pattern is also what /v1/schema publishes: in pydantic's (Rust) and JSON
# Schema's (ECMA) regexes `$` is the end of the text, so it is a full match there too.
_ID_CONSTRAINTS = StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=rf"^{ID_CHARS}+$")
Id = Annotated[str, _ID_CONSTRAINTS, AfterValidator(checked_id)]
SupabaseId = Annotated[str, _ID_CONSTRAINTS, AfterValidator(canonical_id)]
"""A deal, project or user id: stored, indexed and published in its one canonical spelling."""

MAX_SAFE_INTEGER = 2**53
"""Integers beyond ±2**53 are refused: JavaScript (and JSON readers using doubles) cannot hold them exactly."""


def safe_json(value: Any) -> Any:
    """`value`, after refusing numbers outside ±2**53 anywhere in it (free-form JSON: arguments, components).

    Floats too: orjson reads an integer literal too big for 64 bits as a float,
    so ``2**64+1`` would otherwise be stored as 1.8446744073709552e19.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and not abs(item) <= MAX_SAFE_INTEGER:
            raise ValueError("numbers must be within ±2**53 (9007199254740992)")
    return value


ShortText = Annotated[str, StringConstraints(max_length=1_000)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=False)


class BuyerPersona(Model):
    type: ShortText
    motivations: list[ShortText]
    concerns: list[ShortText]


class InvestmentThesis(Model):
    asset: LongText
    timing: LongText
    opportunity: LongText


class HeroContext(Model):
    selectedHero: LongText
    investmentThesis: InvestmentThesis


class OutlineSection(Model):
    id: Id
    title: ShortText
    description: LongText


class Slide(Model):
    id: Id
    sectionId: Id
    title: ShortText
    layoutType: ShortText | None = None
    components: list[Any] = Field(default_factory=list)
    status: SlideStatus = "draft"
    staleReason: ShortText | None = None


class SectionProgress(Model):
    """Progress of one outline section while slides are being built."""

    status: SectionStatus = "pending"
    slideIds: list[Id] = Field(default_factory=list)


class StaleMark(Model):
    """Marks an artifact whose upstream input changed. Saving the artifact again clears it."""

    reason: ShortText
    at: int


class Cim(Model):
    """One CIM document, as stored and as sent to subscribers."""

    id: Id
    dealId: Id
    userId: Id
    projectId: Id
    title: ShortText
    version: int = 1
    status: CimStatus = "draft"
    stage: Stage = "welcome"
    completedStages: list[Stage] = Field(default_factory=list)
    currentSectionId: Id | None = None
    currentSlideId: Id | None = None
    sectionProgress: dict[Id, SectionProgress] = Field(default_factory=dict)
    buyerPersona: BuyerPersona | None = None
    heroContext: HeroContext | None = None
    heroStale: StaleMark | None = None
    outline: list[OutlineSection] | None = None
    outlineStale: StaleMark | None = None
    slides: list[Slide] = Field(default_factory=list)
    gatheredContext: dict[str, Any] | None = None
    revision: int = 0
    createdAt: int
    updatedAt: int
    completedAt: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The document as JSON-ready data; unset optional fields are left out."""
        return self.model_dump(mode="json", exclude_none=True)


class CimSummary(Model):
    """One row of a deal's CIM list (the `deal` topic and list queries)."""

    id: Id
    title: str
    status: CimStatus
    stage: Stage
    updatedAt: int

    @classmethod
    def of(cls, cim: Cim) -> CimSummary:
        return cls(id=cim.id, title=cim.title, status=cim.status, stage=cim.stage, updatedAt=cim.updatedAt)


class Message(Model):
    """One conversation message of a CIM (the seed's `messages` table)."""

    id: Id
    cimId: Id
    role: MessageRole
    content: LongText
    timestamp: int
    embedding: list[float] | None = None
