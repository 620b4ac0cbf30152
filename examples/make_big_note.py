"""Generate ``vault/big/encyclopedia.md``: a ~900 KB note for size and speed tests.

The note is an "encyclopedia of numbers": one section per integer, with facts
that are computed, so they are true, and with every card syntax (Q/A, inline,
cloze with and without hints), wiki links, tags and the odd code block.
The output is deterministic: rerunning the script rewrites the same bytes.

    python examples/make_big_note.py [OUTPUT]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).parent / "vault" / "big" / "encyclopedia.md"
TARGET_BYTES = 890_000  # the file must end up between 850,000 and 950,000 bytes
MAX_PAYLOAD_BYTES = 1_048_576  # its JSON job payload must stay under 1 MiB

HEADER = """---
title: Encyclopedia of numbers
tags: [math, reference, generated]
generator: examples/make_big_note.py
---
# Encyclopedia of numbers

One section per integer. Every fact below is computed by
`examples/make_big_note.py`, so regenerate the file rather than editing it.
Start with [[prime numbers]].
"""


def divisors(n: int) -> list[int]:
    """All divisors of n, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def factorization(n: int) -> str:
    """Prime factorization written like ``2^3 * 5``."""
    parts, p = [], 2
    while p * p <= n:
        power = 0
        while n % p == 0:
            n, power = n // p, power + 1
        if power:
            parts.append(f"{p}^{power}" if power > 1 else str(p))
        p += 1
    if n > 1:
        parts.append(str(n))
    return " * ".join(parts)


def roman(n: int) -> str:
    """Roman numeral for 1 <= n < 4000."""
    values = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
              (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = []
    for value, letters in values:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def collatz_steps(n: int) -> int:
    """Steps of the 3n+1 map until reaching 1."""
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    return steps


def is_fibonacci(n: int) -> bool:
    return any(math.isqrt(x) ** 2 == x for x in (5 * n * n + 4, 5 * n * n - 4))


def traits(n: int, divs: list[int]) -> list[str]:
    """Short true statements about n, used as prose and tags."""
    found = ["prime" if len(divs) == 2 else "composite"]
    if math.isqrt(n) ** 2 == n:
        found.append("perfect-square")
    if math.isqrt(8 * n + 1) ** 2 == 8 * n + 1:
        found.append("triangular")
    if str(n) == str(n)[::-1]:
        found.append("palindrome")
    if is_fibonacci(n):
        found.append("fibonacci")
    if n % sum(map(int, str(n))) == 0:
        found.append("harshad")
    if sum(divs) - n == n:
        found.append("perfect")
    return found


def section(n: int) -> str:
    """One encyclopedia entry, touching every syntax the parser knows."""
    divs = divisors(n)
    kinds = traits(n, divs)
    parity = "even" if n % 2 == 0 else "odd"
    tags = " ".join(f"#number/{kind}" for kind in [parity, *kinds])
    lines = [
        f"## Number {n}",
        "",
        f"{n} is an {parity} {kinds[0]} number"
        + (f"; it is also {', '.join(kinds[1:])}" if kinds[1:] else "")
        + f". In binary it is written `{n:b}`, in hexadecimal `{n:x}`. {tags}",
        "",
        f"Q: What is the prime factorization of {n}?",
        f"A: {factorization(n)}",
        "",
        f"Q: How many steps does the Collatz map take to bring {n} down to 1?",
        f"A: {collatz_steps(n)} step{'s' if collatz_steps(n) != 1 else ''}.",
        "",
        f"{n} in Roman numerals::{roman(n)}",
        f"Square of {n}::{n * n:,}",
        "",
        f"{n} has {{{{c1::{len(divs)}}}}} divisors, and their sum is {{{{c2::{sum(divs)}::sigma}}}}.",
        f"Its digits add up to {{{{c3::{sum(map(int, str(n)))}}}}}.",
        "",
        f"Neighbours: [[#Number {n - 1}]], [[#Number {n + 1}|next]], see also [[prime numbers]].",
    ]
    if n % 25 == 0:
        lines += [
            "",
            "```python",
            f"# Checks the facts above: n::{n} is code, so this is no card.",
            f"assert sum(d for d in range(1, {n} + 1) if {n} % d == 0) == {sum(divs)}  # {{{{c1::no}}}}",
            "```",
        ]
    return "\n".join(lines) + "\n\n"


def build(target: int = TARGET_BYTES) -> str:
    """The whole note: sections for 2, 3, 4, ... until it is about ``target`` bytes.

    It starts at 2 because 1 is neither prime nor composite and has no factorization.
    """
    parts, size, n = [HEADER, "\n"], len(HEADER) + 1, 2
    while size < target:
        entry = section(n)
        parts.append(entry)
        size += len(entry.encode("utf-8"))
        n += 1
    return "".join(parts)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    text = build()
    size = len(text.encode("utf-8"))
    payload = len(json.dumps({"path": "big/encyclopedia.md", "text": text}))
    assert 850_000 <= size <= 950_000, size
    assert payload < MAX_PAYLOAD_BYTES, payload
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))
    print(f"wrote {out}: {size:,} bytes, JSON payload {payload:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
