"""The cimhub wire protocol: frames, codecs, CIM schema and pure rules. No I/O."""
