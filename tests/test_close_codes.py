"""Close codes: one enum in protocol/close.py and the docs table agree.

The JavaScript clients get the same codes generated into clients/js/src/generated.ts
(tests/test_js_package.py fails when that is stale).
"""

from __future__ import annotations

import re
from pathlib import Path

from cimhub.protocol.close import CloseCode, should_reconnect

ROOT = Path(__file__).resolve().parent.parent


def test_only_the_stop_range_forbids_reconnecting() -> None:
    codes = (None, 1000, 1006, 1011, 1012, 4000, 4008, 4399, 4400, 4401, 4403, 4429, 4499, 4500)
    assert [should_reconnect(code) for code in codes] == [
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert CloseCode.RESTART.should_reconnect()
    assert not CloseCode.AUTH_FAILED.should_reconnect()


def test_docs_table_lists_exactly_the_enum() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Close codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, flags=re.MULTILINE)}
    assert documented == {code.value for code in CloseCode}
