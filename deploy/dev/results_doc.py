"""Writes a benchmark script's results into a Markdown document between its markers.

Shared by bench.sh and reference.sh: each owns one marked block of docs/benchmarks.md,
so either can be rerun without touching the other's figures or the prose around them.
"""

import os


def write_between_markers(path, name, results, heading):
    """Puts `results` between `<!-- {name}:results:start -->` and its end marker in the
    document at `path`, or appends it under `heading` when the markers are absent."""
    start, end = f"<!-- {name}:results:start -->", f"<!-- {name}:results:end -->"
    block = f"{start}\n{results}\n{end}"
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)
    return block
