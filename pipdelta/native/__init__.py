"""Executable-aware prediction: the old native binaries of a blob rewritten as if their code had moved like the new."""
