"""Live connections: the hub (who watches what), feeds, the Redis pub/sub broker, the per-connection session and sender."""
