"""The documented limits of one query (docs/INDEX.md): what a server accepts and a client keeps within."""

MAX_BODY = 1 << 20
MAX_INSTALLED = 10_000
# A compressed tag set (``py2.py3-none-any``) stands for the product of its parts' alternatives; it is counted
# before it is expanded. A wheel has a few dozen tags at most, an interpreter ~1,500 (``packaging.tags.sys_tags``).
MAX_TAGS = 2_048
MAX_QUERY_TAGS = 50_000
