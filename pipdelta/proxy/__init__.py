"""The local, delta-aware package index: a simple index on 127.0.0.1 in front of the user's real indexes."""
