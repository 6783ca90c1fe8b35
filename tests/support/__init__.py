"""What several test modules share: a raw protocol client, `eventually`, a hand-moved clock.

tests/ is on sys.path (pytest puts the rootdir of conftest.py there), so a test
imports these as ``from support.wire import connect``.
"""
