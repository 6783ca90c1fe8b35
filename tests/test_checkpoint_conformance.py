"""LangGraph's own conformance suite (langgraph-checkpoint-conformance) against the Redis savers.

The suite drives only the async methods. `CimhubRedisSaver`'s async methods run its
sync methods in a worker thread, so running the suite against it exercises the
sync code path too (the sync class also has its own tests with real graphs).
Every capability, required or optional, must be detected and pass.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, EXTENDED_CAPABILITIES
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from cimhub.server.checkpoint import AsyncCimhubRedisSaver, CimhubRedisSaver

SaverFactory = Callable[[str, str], AbstractAsyncContextManager[BaseCheckpointSaver[Any]]]


@asynccontextmanager
async def async_saver(url: str, prefix: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    async with AsyncCimhubRedisSaver.from_url(url, key_prefix=prefix) as saver:
        yield saver


@asynccontextmanager
async def async_saver_with_ttl(url: str, prefix: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    async with AsyncCimhubRedisSaver.from_url(url, key_prefix=prefix, ttl_s=600) as saver:
        yield saver


@asynccontextmanager
async def sync_saver(url: str, prefix: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    with CimhubRedisSaver.from_url(url, key_prefix=prefix) as saver:
        yield saver


@pytest.mark.parametrize(
    "make_saver",
    [async_saver, async_saver_with_ttl, sync_saver],
    ids=["AsyncCimhubRedisSaver", "AsyncCimhubRedisSaver-ttl", "CimhubRedisSaver"],
)
async def test_conformance(make_saver: SaverFactory, redis_url: str, key_prefix: str) -> None:
    counter = itertools.count()

    @checkpointer_test(name=f"cimhub {make_saver.__name__}")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        # A fresh prefix per capability suite, under the test's own prefix (cleaned up by the fixture).
        async with make_saver(redis_url, f"{key_prefix}:{next(counter)}") as saver:
            yield saver

    report = await validate(factory, progress=ProgressCallbacks.verbose())
    report.print_report()

    results = report.results
    failures = {name: r.failures for name, r in results.items() if r.failures}
    assert not failures, f"conformance failures: {failures}"
    for capability in BASE_CAPABILITIES:
        result = results[capability.value]
        assert result.detected and result.passed, f"required capability {capability.value}: {result}"
    for capability in EXTENDED_CAPABILITIES:
        result = results[capability.value]
        assert result.detected, f"optional capability {capability.value} not implemented"
        assert result.passed, f"optional capability {capability.value} failed: {result.failures}"
    assert report.conformance_level() == "FULL"
    passed = {name: r.tests_passed for name, r in results.items()}
    print(f"conformance tests passed per capability: {passed}")
    assert all(count > 0 for count in passed.values())
