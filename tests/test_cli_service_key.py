"""`cimhub service-key` prints a key that a hub configured with it accepts as a service."""

from __future__ import annotations

from click.testing import CliRunner

from cimhub.clients.cli import cli
from cimhub.server.auth.tokens import TokenVerifier


async def test_a_printed_service_key_is_accepted_by_a_hub_that_lists_it() -> None:
    result = CliRunner().invoke(cli, ["service-key"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("cimhub_sk_") and len(key) >= 32
    verifier = TokenVerifier(service_keys=[key])
    identity = await verifier.verify(key, on_behalf_of="user-7")
    assert identity.is_service and identity.user_id == "user-7"
    await verifier.aclose()


def test_two_keys_differ() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["service-key"]).output != runner.invoke(cli, ["service-key"]).output
