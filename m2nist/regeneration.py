"""The last layer of ``m2nist-gen --verify``: rows generated again and compared byte for byte.

Generation is deterministic, so the recorded seed, parameters and MNIST source (found by
its recorded checksums, never by its name) give back every row: a consistent edit that
keeps each invariant and fixes up the sha256s in ``metadata.json`` is still caught. The
digit pool is rebuilt here without the pool cache, so a poisoned cache cannot vouch for
itself. :mod:`m2nist.verification` runs this only once every cheaper check has passed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

from m2nist.compose import block_spans, compose_range
from m2nist.invariants import digit_counts, one_hot
from m2nist.metadata import Metadata, tally
from m2nist.mnist import SAMPLE, MnistSourceError, load_split, sample_path
from m2nist.npz import ARRAY_NAMES
from m2nist.pool import digit_pool
from m2nist.stored import open_split

__all__ = ["matching_source", "regenerate_split"]


def matching_source(
    recorded: dict, split: str, source: str | os.PathLike | None
) -> tuple[str | Path | None, str]:
    """The MNIST source whose checksums are the recorded ones, or None and why not.

    Candidates: ``source`` when given, else ``$M2NIST_MNIST_DIR`` and the recorded folder.
    A folder is accepted only when its two files of ``split`` have the recorded md5s (the
    name or compression may differ), the sample only when its sha256 is the recorded one.
    """
    train = split == "train"
    if recorded["kind"] == SAMPLE:
        if source is not None and source != SAMPLE:
            return None, f"it was made from the bundled sample, not {source}"
        if load_split(train, SAMPLE).source["sha256"] != recorded["sha256"]:
            return None, f"the bundled sample ({sample_path()}) differs from the one recorded"
        return SAMPLE, "the bundled sample"
    want = sorted(f["md5_uncompressed"] for f in recorded["files"].values())
    if source == SAMPLE:
        return None, f"it was made from MNIST in {recorded['path']}, not the bundled sample"
    env = os.environ.get("M2NIST_MNIST_DIR")
    candidates = [source] if source is not None else [env, recorded["path"]]
    reasons = []
    for folder in dict.fromkeys(c for c in candidates if c):
        try:
            found = load_split(train, folder).source["files"].values()
        except MnistSourceError as exc:
            reasons.append(" ".join(str(exc).split()))
            continue
        if sorted(f["md5_uncompressed"] for f in found) == want:
            return Path(folder), str(folder)
        reasons.append(f"{folder}: MNIST files differ from the recorded md5s")
    return None, "; ".join(reasons) or "no MNIST folder to compare with"


def regenerate_split(
    out: Path, meta: Metadata, split: str, mode: str, source: object
) -> tuple[str | None, str]:
    """Generate rows of ``split`` again and compare them byte for byte with the files.

    Returns ``(problem, note)``: the first difference found (or None) and what was proven
    (or why regeneration was skipped).
    """
    resolved, why = matching_source(meta.source[split], split, source)
    if resolved is None:
        return None, f"{split}: regeneration skipped: {why}"
    info = meta.splits[split]
    start, stop = info["start"], info["stop"]
    spans = block_spans(start, stop)
    if mode == "sample" and len(spans) > 3:
        middle = spans[1 + secrets.randbelow(len(spans) - 2)]
        spans = [spans[0], middle, spans[-1]]
    stored = open_split(out, split, meta)
    pool = digit_pool(split, meta.params, resolved, cached=False)  # proves the cache too
    per_count = np.zeros(meta.params.max_digits + 1, np.int64)
    for a, b in spans:
        fresh = compose_range(pool, meta.params, meta.seed, split, a, b)
        per_count += np.bincount(digit_counts(fresh.boxes), minlength=len(per_count))
        expected = dict(zip(ARRAY_NAMES, fresh.arrays(), strict=True))
        for fmt, arrays in stored.items():
            for kind, rows in arrays.items():
                want = one_hot(fresh.labels) if kind == "one_hot" else expected[kind]
                if not np.array_equal(np.asarray(rows[a - start : b - start]), want):
                    return (
                        f"{out}: {split} rows {a}-{b}: {_STORED_NAMES[fmt, kind]} differs from a "
                        f"regeneration with the recorded seed, parameters and MNIST ({why}; "
                        f"recorded version {meta.version})"
                    ), ""
    rows = sum(b - a for a, b in spans)
    if rows == stop - start and tally(per_count, meta.params) != info["per_digit_count"]:
        return f"{out}: {split}: per-digit-count tally differs from metadata", ""
    return None, f"{split}: {rows} of {stop - start} rows regenerated from {why}: identical"


#: How a problem names each stored array.
_STORED_NAMES = {
    **{("npz", name): name for name in ARRAY_NAMES},
    ("kaggle", "images"): "combined",
    ("kaggle", "one_hot"): "segmented",
    ("kaggle-flat", "images"): "combined.npy",
    ("kaggle-flat", "one_hot"): "segmented.npy",
    ("png", "images"): "images/*.png",
    ("png", "labels"): "masks/*.png",
}
