"""Keys: every Redis key and channel name, in one place, under the prefix."""

from __future__ import annotations

from cimhub.server.store.keys import Keys


def test_a_cims_keys_share_its_hash_slot() -> None:
    keys = Keys("p")
    names = [keys.cim("c1"), keys.log("c1"), keys.mutation("c1", "m1"), *keys.messages("c1")]
    assert all(name.startswith("p:cim:{c1}") for name in names)
    assert len(set(names)) == len(names)


def test_channels_are_under_the_prefix_and_distinct() -> None:
    keys = Keys("p")
    channels = [keys.cim_channel("x"), keys.deal_channel("x"), keys.message_channel("x"), keys.alive_channel]
    assert all(channel.startswith("p:ch:") for channel in channels)
    assert len(set(channels)) == len(channels)
    assert Keys("q").alive_channel != keys.alive_channel  # two deployments on one Redis do not share it
