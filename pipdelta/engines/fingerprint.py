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
    "zlib:6:8:0": "f6ba9887fd7a8c84e170e216e8f5460458de84f23f1ffcf1152a85bcaf6d57f3",
    "cramjam:6": "02801a4b8b4576a7e71be20d5a6e036f6ebb96099ea31e44e48e56a2f0dbd4f2",
    "flate2:6:8k": "abf77abce4b63da3c0893ac48c737d5d53cc240ce2087c9e589942dff5f5ef7f",
    "flate2:6:whole": "a46c62a20903b02fa5383e6b1ff7d77bf980bcd71f585b1f0495f1fa8c903527",
    "zlib:9:8:0": "018ac4b84b8ba95d7afadc15e1e1001c18c7f578abcdcb63528e39bced0540b2",
    "zlib:1:8:0": "18931512766274c8c0ad192f8666d54fc6b163d25066aea06dd826b7cae84658",
    "zlib:2:8:0": "94f208eaa9a4c08003415a7146e9fd97fed73c2cb6949cb6d53c264c2275a138",
    "zlib:3:8:0": "5ce2c9d13cc53fd331f0a17f4563ba1dabb03db79c176255b76d237a52e8e319",
    "zlib:4:8:0": "c2f8174f09338c861e019a7eb92b90f3576d69025b31e0665a95630aab2b5992",
    "zlib:5:8:0": "b102716a0a762e97e6afbe52b65d0df73435e560c7f5f7039ccd912bdf560b82",
    "zlib:7:8:0": "70a08b4b68034a2f59fde46902186ed4eab4f1aa166be654710461924afc7c7b",
    "zlib:8:8:0": "94824edfd8fa4399fd5f5efce84296687d7dc8637bfb4601ed4e0174e87797ae",
    "zlib:6:9:0": "02dcad12c3ffac1ae3b6488a1758f60d693e1bfacbb21e589c02f2f354a7f941",
    "zlib:9:9:0": "71348b86c89edf443c5bd45d86633f9b97bfaaf57d6fc13b8b92e5db840125f7",
    "cramjam:9": "99b2d6c06c82c093cd8c3fc5a742d739dbe7f8bf29c43bafd77a42a88aee36ee",
    "cramjam:1": "1c735e178b33ca6ce58083482dd1cf0ab67f2bb8ffe230218d187d0fe871659b",
    "flate2:9:8k": "040703967d25b1860f80cac698eb3622b73273c04df037dadc0994d07f62a088",
    "flate2:9:whole": "c48be2b6d627f2dbc729daefd40a813127e7f15c5f0dbd398ffe0893321b2d3f",
    "flate2:1:8k": "cd48a85702433df05ef77a63eb4a1c1e8c8e4cf0b8488908d6ea079b40bd071c",
    "flate2:1:whole": "3b849b6133e02bca54a471cb294f9aa4a7eeb62bbde85a7fae026be05dd1a9b6",
    "zlibng:6:8:0": "dc626924243ddc014afcf14e1740b5662205645cae1ffe55f7321301c397ff4c",
    "flate2:6:lines": "4bcb4b73b812ccf4cb787f9410038ad976d4a1d52d45395f8ceedb37e0b4ae65",
    "flate2:6:fields": "99342d55036bd4623071a7894b43b50dda1ee07d340420368d84aad99dbdee7e",
    "zlibng:9:8:0": "ff9f82fc74b709904bf59a845718928347d2fc18730130651a58ee06c81fb7cf",
    "zlibng22:6:8:0": "a846f459c8f7ebcea51422f8dc6522319fc0ec49541f2d63f532435282d82ed8",  # zlib-ng 2.2.2
}


@functools.cache
def sample() -> bytes:
    """About 230 KB of indented, Zipf-ish text and random bytes, the same on every machine."""
    words = [hashlib.sha256(b"%d" % i).hexdigest()[: 2 + i % 11].encode() for i in range(1024)]
    stream = b"".join(hashlib.sha256(b"pick %d" % i).digest() for i in range(4096))
    lines, line = [], []
    for i in range(20000):
        # Cubing a uniform pick skews it towards the first words, as word frequencies are skewed.
        line.append(words[(stream[2 * i] * 256 + stream[2 * i + 1]) ** 3 // (1 << 38)])
        if stream[i] < 24:
            lines.append(b"    " * (stream[i + 7] % 4) + b" ".join(line) + b"\n")
            line = []
    text = b"".join(lines)
    return text + stream[:16384] + text[: len(text) // 3]


@functools.cache
def reproduces(recipe: Recipe) -> bool:
    expected = EXPECTED.get(str(recipe))
    try:
        return expected is not None and hashlib.sha256(recipe.compress(sample())).hexdigest() == expected
    except EngineMismatch:  # the engine is not on this machine
        return False


def check(recipes: Iterable[Recipe]) -> None:
    """Raise :class:`EngineMismatch` naming every recipe this machine cannot reproduce."""
    failing = sorted(str(r) for r in recipes if not reproduces(r))
    if failing:
        raise EngineMismatch(
            f"this machine's deflate engines differ from the maker's for {', '.join(failing)}: "
            "the members made with them must come from the old wheel or, by range, from the new one"
        )
