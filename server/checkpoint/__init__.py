"""LangGraph checkpoints in Redis hashes."""
