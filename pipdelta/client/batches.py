"""Upgrade queries within the server's documented limits: a big environment is split into several requests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipdelta.index.bounds import MAX_BODY, MAX_INSTALLED, MAX_QUERY_TAGS, MAX_TAGS
from pipdelta.index.model import API_VERSION

ENVELOPE = 256  # bytes of a body besides its items: the meta object, the keys, brackets and commas


@dataclass(frozen=True)
class Item:
    """One installed distribution as the query lists it, the number of wheel tags it stands for, its ``want``."""

    name: str
    entry: Mapping[str, Any]
    tags: int
    want: str | None = None

    @property
    def cost(self) -> int:
        """Its bytes in a body: the entry, its ``want`` pair and their separators."""
        want = len(json.dumps({self.name: self.want})) if self.want is not None else 0
        return len(json.dumps(self.entry)) + 2 + want + 2


@dataclass
class Split:
    """The request bodies, and the items no request may carry (with the reason)."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def split(items: Sequence[Item]) -> Split:
    """Bodies of at most MAX_INSTALLED items, MAX_QUERY_TAGS tags and MAX_BODY bytes, in the items' order."""
    out = Split()
    batch: list[Item] = []
    tags = size = 0
    for item in items:
        if item.tags > MAX_TAGS or ENVELOPE + item.cost > MAX_BODY:
            out.refused[item.name] = f"its installed wheel tags are too many for one query (at most {MAX_TAGS:,})"
            continue
        if batch and (len(batch) == MAX_INSTALLED or tags + item.tags > MAX_QUERY_TAGS or size + item.cost > MAX_BODY):
            out.bodies.append(_body(batch))
            batch, tags, size = [], 0, 0
        batch.append(item)
        tags += item.tags
        size = (size or ENVELOPE) + item.cost
    if batch:
        out.bodies.append(_body(batch))
    return out


def _body(batch: list[Item]) -> dict[str, Any]:
    body: dict[str, Any] = {"meta": {"api-version": API_VERSION}, "installed": [item.entry for item in batch]}
    want = {item.name: item.want for item in batch if item.want is not None}
    if want:
        body["want"] = want
    return body
