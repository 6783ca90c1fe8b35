"""A real Redis Cluster for the tests: 3 primaries + 3 replicas of Debian's redis-server on loopback.

Started with `redis-cli --cluster create`, like an operator would; each node
keeps an append-only file. `cluster_node_timeout_ms` is short so a killed
primary is replaced within a few seconds. Used as a pytest plugin (fixtures
`redis_cluster` for the session, `private_cluster` for a test that kills nodes).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

__all__ = [
    "ClusterNodeProcess",
    "RedisClusterProcess",
    "move_slot",
    "node_id",
    "private_cluster",
    "redis_cluster",
]


@dataclass
class ClusterNodeProcess:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, redis_server: str, node_timeout_ms: int) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(node_timeout_ms),
                "--cluster-replica-validity-factor",
                "0",
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                "redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """SIGKILL: a crash of this node."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@dataclass
class RedisClusterProcess:
    """Six redis-server processes joined into one cluster (3 primaries, 1 replica each)."""

    root: Path
    node_timeout_ms: int = 1000
    nodes: list[ClusterNodeProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The cluster URL cimhub reads: ``redis+cluster://`` and a seed list."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def sync_client(self) -> redis.RedisCluster:
        node = next(n for n in self.nodes if n.process is not None)
        return redis.RedisCluster(host="127.0.0.1", port=node.port)

    def start(self) -> None:
        redis_server = need("redis-server")
        redis_cli = need("redis-cli")
        ports: list[int] = []
        while len(ports) < 6:
            port = free_cluster_port()
            if port not in ports:
                ports.append(port)
        self.nodes = [ClusterNodeProcess(port, self.root / f"node{i}") for i, port in enumerate(ports)]
        for node in self.nodes:
            node.start(redis_server, self.node_timeout_ms)
        for node in self.nodes:
            wait_for_ping(node)
        subprocess.run(
            [
                redis_cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        self.wait_healthy()

    def restart(self, node: ClusterNodeProcess) -> None:
        """Start a killed node again: it rejoins from its nodes.conf (a replica of whoever took its slots)."""
        node.start(need("redis-server"), self.node_timeout_ms)
        wait_for_ping(node)
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Until every live node says cluster_state:ok, every slot has a live primary, replicas are in sync.

        After a primary is killed this waits for its replica's promotion.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if all(self._ok(node) for node in self.nodes if node.process is not None):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not become healthy")
            time.sleep(0.1)

    def _ok(self, node: ClusterNodeProcess) -> bool:
        """The node sees a healthy cluster, every slot served by a live primary, and (a replica) is in sync."""
        with node.client() as client:
            info = client.execute_command("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info:
                return False
            live = {n.port for n in self.nodes if n.process is not None}
            for _start, _end, primary, *_replicas in client.execute_command("CLUSTER", "SLOTS"):
                if int(primary[1]) not in live:
                    return False
            replication = client.info("replication")
            return replication["role"] == "master" or replication.get("master_link_status") == "up"

    def primaries(self) -> list[ClusterNodeProcess]:
        """The live nodes that are primaries now (after a failover too)."""
        result = []
        for node in self.nodes:
            if node.process is None:
                continue
            with node.client() as client:
                role = client.execute_command("ROLE")
            if role[0] in (b"master", "master"):
                result.append(node)
        return result

    def owner_of(self, key: str) -> ClusterNodeProcess:
        """The node that owns `key`'s slot now, as the cluster itself says."""
        with self.primaries()[0].client() as client:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            for start, end, primary, *_replicas in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(primary[1]))
        raise LookupError(f"no primary owns {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def free_cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too: both must fit below 65536."""
    while True:
        port = random.randint(20_000, 40_000)
        if all(_free(p) for p in (port, port + 10_000)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_ping(node: ClusterNodeProcess, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with node.client() as client:
                if client.ping():
                    return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (scripts/test installs redis-server)")
    return path


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterProcess]:
    """One cluster for the whole run; tests isolate their keys with a prefix, as on a single node."""
    with tempfile.TemporaryDirectory(prefix="cimhub-cluster-") as root:
        cluster = RedisClusterProcess(Path(root))
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[RedisClusterProcess]:
    """A cluster only this test uses: it may kill nodes and move slots."""
    cluster = RedisClusterProcess(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def node_id(node: ClusterNodeProcess) -> str:
    with node.client() as client:
        return str(client.execute_command("CLUSTER", "MYID").decode())


def move_slot(cluster: RedisClusterProcess, slot: int, target: ClusterNodeProcess) -> None:
    """Migrate one slot (with its keys) to `target`, the way redis-cli --cluster reshard does."""
    source = next(n for n in cluster.primaries() if _owns(n, slot))
    if source is target:
        return
    source_id, target_id = node_id(source), node_id(target)
    with source.client() as src, target.client() as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for node in cluster.primaries():
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    cluster.wait_healthy()


def _owns(node: ClusterNodeProcess, slot: int) -> bool:
    with node.client() as client:
        for start, end, primary, *_replicas in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(primary[1]) == node.port
    return False
