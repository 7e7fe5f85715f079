"""Deflate engines that re-create a member's compressed bytes exactly, named by recipes."""
