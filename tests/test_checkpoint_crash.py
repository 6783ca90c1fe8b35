"""A graph process killed with SIGKILL mid-step resumes in a new process from Redis.

Two branches run in parallel; `fast` finishes and its write is stored as a
pending write, then the process is killed while `slow` is still running. The
new process resumes the thread: `slow` runs, `fast` does not run again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from cimhub.server.checkpoint import CimhubRedisSaver

CHILD = """
import asyncio, json, operator, sys, time
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from cimhub.server.checkpoint import AsyncCimhubRedisSaver

url, prefix, workdir, mode = sys.argv[1:5]
work = Path(workdir)


class Outline(TypedDict):
    steps: Annotated[list[str], operator.add]


def fast(state):
    with open(work / "fast.runs", "a") as runs:
        runs.write("x")
    return {"steps": ["fast"]}


def slow(state):
    if mode == "first":
        (work / "slow.started").touch()
        time.sleep(600)  # killed in here
    return {"steps": ["slow"]}


builder = StateGraph(Outline)
builder.add_node("fast", fast)
builder.add_node("slow", slow)
builder.add_node("join", lambda state: {"steps": ["join"]})
builder.add_edge(START, "fast")
builder.add_edge(START, "slow")
builder.add_edge(["fast", "slow"], "join")
builder.add_edge("join", END)


async def main():
    async with AsyncCimhubRedisSaver.from_url(url, key_prefix=prefix) as saver:
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "cim-crash"}}
        if mode == "first":
            await graph.ainvoke({"steps": ["start"]}, config, durability="sync")
        else:
            print(json.dumps(await graph.ainvoke(None, config, durability="sync")))


asyncio.run(main())
"""


def test_resume_in_a_new_process_after_sigkill(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), redis_url, key_prefix, str(tmp_path)]
    first = subprocess.Popen([*args, "first"])
    try:
        with CimhubRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
            config: RunnableConfig = {"configurable": {"thread_id": "cim-crash"}}
            deadline = time.monotonic() + 60
            while True:
                assert first.poll() is None, "the first process exited before it could be killed"
                latest = saver.get_tuple(config)
                stored = [channel for _, channel, _ in (latest.pending_writes or [])] if latest else []
                if (tmp_path / "slow.started").exists() and "steps" in stored:
                    break
                assert time.monotonic() < deadline, "fast's pending write never reached Redis"
                time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run([*args, "resume"], capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.strip().splitlines()[-1])
    assert sorted(result["steps"]) == ["fast", "join", "slow", "start"]
    assert (tmp_path / "fast.runs").read_text() == "x"  # the killed run's write was kept: fast ran once
