"""Self-test: does this machine's engine give, for a fixed sample, the bytes the maker's engine gave?"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

from pipdelta.engines.recipes import Recipe
from pipdelta.errors import EngineMismatch

# sha256 of Recipe(...).compress(sample()), as made with CPython's zlib 1.2.13/1.3, cramjam 2.14.0 and
# zlib-ng 2.3.3 (the zlib-ng 1.1.0 package). A machine whose engine differs cannot rebuild those members.
EXPECTED = {
    "zlib:6:8:0": "8d7ede50213ea5b01636a08addfb1ee4ce9397679da63ce54ee14a9b15d0940e",
    "cramjam:6": "d31e63c6734a6c725f1c55cb82bad7c98a7643b8782967dfded34a30983e27d7",
    "flate2:6:8k": "0a4f7258de7953ef04ab064675caa2f9cf1dfca8154c6370a98ed28a6b9300dc",
    "flate2:6:whole": "bf4ac132d0c012b0b5ff16121a0d76dddce7aabd132d4579721fee140cea4145",
    "zlib:9:8:0": "67e97a169841d6bfc147daa54cfd98f2fb5816a1456a91abc38584ffb1a5228f",
    "zlib:1:8:0": "8d7a982796c1147f5d0312be23aa754f18c65faba22b48d3312032ceb68582a1",
    "zlib:2:8:0": "31b430bd49016c41687f0cd31a63b25d6bbf7c03a241c7e80e2b5c99aaffbfdc",
    "zlib:3:8:0": "9b639d791b558fe6758bc6ec5a65595e19ac0820de661b1d3c211b56166896c6",
    "zlib:4:8:0": "a2df3205a948e1a5a8e465378237c7ddf8615afae08b57085dc955d60857fe9f",
    "zlib:5:8:0": "1a3848b8fe622c261b93aaee6dff9ea624eb978eff261052c7a3a5477992a794",
    "zlib:7:8:0": "65ab393ceb9ffe878fbdf20ab26d3e4c6ad377e7cf9c487193bbea5ce8efaac3",
    "zlib:8:8:0": "bb16e8ae7e77a07388d173dee90c8c4726033b88c599da1bd062710c5db4b651",
    "zlib:6:9:0": "c3eb23ab1fcc731b2eb0ef3a2d3cdcf17e4fe376aec352182ebc27e0381ba466",
    "zlib:9:9:0": "b178d64faadbf7b3f2054920b71003ae6e165e28e184837f0e6a89f9697baa71",
    "cramjam:9": "73a7f5efa0194f7077fc15e1d3ccb61d6797542c78903faa7c90f6a58f1ef2b0",
    "cramjam:1": "2bc6b4a70387f4bf59010525f1a6f79b53dc259cddb8845188c2788f4e269170",
    "flate2:9:8k": "f9cc9756760acb4515cc18033c2a4c7d94990bcd0da840a74d6c3191d7c93c40",
    "flate2:9:whole": "f9cc9756760acb4515cc18033c2a4c7d94990bcd0da840a74d6c3191d7c93c40",
    "flate2:1:8k": "f4fbe489d6d162b914d6380498a33400c38bf9708327ff3d0e306c2486f1fd0b",
    "flate2:1:whole": "5b5da3075a085df4480dcac91fc4c077bb654d9ab1744483cd4cf195bf176775",
}


@functools.cache
def sample() -> bytes:
    """About 700 KB of indented, Zipf-ish text and random bytes, the same on every machine."""
    words = [hashlib.sha256(b"%d" % i).hexdigest()[: 2 + i % 11].encode() for i in range(1024)]
    stream = b"".join(hashlib.sha256(b"pick %d" % i).digest() for i in range(4096))
    lines, line = [], []
    for i in range(60000):
        # Cubing a uniform pick skews it towards the first words, as word frequencies are skewed.
        line.append(words[(stream[2 * i] * 256 + stream[2 * i + 1]) ** 3 // (1 << 38)])
        if stream[i] < 24:
            lines.append(b"    " * (stream[i + 7] % 4) + b" ".join(line) + b"\n")
            line = []
    text = b"".join(lines)
    return text + stream[:65536] + text[: len(text) // 3]


@functools.cache
def reproduces(recipe: Recipe) -> bool:
    expected = EXPECTED.get(str(recipe))
    return expected is not None and hashlib.sha256(recipe.compress(sample())).hexdigest() == expected


def check(recipes: Iterable[Recipe]) -> None:
    """Raise :class:`EngineMismatch` naming every recipe this machine cannot reproduce."""
    failing = sorted(str(r) for r in recipes if not reproduces(r))
    if failing:
        raise EngineMismatch(
            f"this machine's deflate engines do not reproduce {', '.join(failing)}; "
            "rebuild from the old wheel instead, or download the full wheel"
        )
