"""The CIM agent's conversation beside its CIM: message log, vectors, search, feed and operations."""
