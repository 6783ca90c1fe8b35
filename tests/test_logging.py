"""The hub's logs: JSON lines when CIMHUB_LOG_FORMAT=json, readable text otherwise."""

from __future__ import annotations

import json

from hubproc import start_hub


def test_json_log_format_writes_one_object_per_line(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix, log_format="json") as hub:
        hub.terminate()
        text = hub.log_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert records, text
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert any(record["logger"].startswith("uvicorn") for record in records)
    assert any(record["level"] == "WARNING" and "dev mode" in record["message"] for record in records)
    assert any("cimhub is listening: open http://127.0.0.1:" in record["message"] for record in records)


def test_text_log_format_is_for_people(redis_url: str, key_prefix: str) -> None:
    with start_hub(redis_url, key_prefix) as hub:
        hub.terminate()
        text = hub.log_path.read_text()
    assert "cimhub is listening: open http://127.0.0.1:" in text  # the banner, with the URL to open
    assert not any(line.startswith("{") for line in text.splitlines())
