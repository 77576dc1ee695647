"""Does this bench run use the reference's datasets? Every dataset's fingerprint
(`jaxo2o.data.fingerprint`) against the one the reference recorded.

A table made on other data (another CPU made its own datasets by the same recipe, and a
behaviour SAC run amplifies the last float bits into other trajectories) cannot reproduce the
reference's numbers; the bench says so plainly, and `compare.md` sets those cells apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxo2o.data import fingerprint as fp
from jaxo2o.report.files import write_json


def write_fingerprints(root: Path, fingerprints: dict[str, dict[str, Any]]) -> None:
    """`<root>/datasets.json`: the fingerprint of every dataset this run read."""

    write_json(root / fp.FILE, {"datasets": dict(sorted(fingerprints.items()))})


def dataset_report(root: Path, reference: Path) -> tuple[str, set[tuple[str, str]]]:
    """(text for the top of compare.md, the (task, kind) cells whose data differ or cannot be
    checked). The text is empty when every dataset matches the reference's fingerprint."""
    mine, ref = fp.read(root), fp.read(reference)
    lines, apart = [], set()
    for ds_id, f in sorted(mine.items()):
        where = (f.get("task", ""), f.get("kind", ""))
        if ds_id not in ref:
            apart.add(where)
            lines.append(
                f"- `{ds_id}`: the reference records no fingerprint of it; whether its data are "
                "the reference's cannot be told"
            )
            continue
        diff = fp.differences(f, ref[ds_id])
        if diff:
            apart.add(where)
            lines.append(f"- `{ds_id}` DIFFERS from the reference's: " + "; ".join(diff))
        elif ref[ds_id].get("hash") is None:
            apart.add(where)
            lines.append(
                f"- `{ds_id}`: the reference records no content hash (made before fingerprints); "
                "the fields it records agree, the bytes cannot be checked"
            )
    if not lines:
        return "", apart
    text = (
        "## Datasets\n\nNot every dataset of this run is known to be the reference's. Cells on "
        "these datasets are listed apart below and left out of the share inside the CIs: other "
        "data give other numbers, whatever the code does.\n\n" + "\n".join(lines) + "\n\n"
    )
    return text, apart


def differs_line(ds_id: str, mine: dict[str, Any], reference: Path) -> str:
    """One plain line when a dataset is not the reference's ("" when it is, or when the
    reference records nothing of it), printed by the bench as it loads the dataset."""
    ref = fp.read(reference).get(ds_id)
    if ref is None:
        return ""
    diff = fp.differences(mine, ref)
    if diff:
        return (
            f"DATASET DIFFERS from the reference's ({reference}): {ds_id}: "
            + "; ".join(diff)
            + ". Its cells cannot reproduce the reference's; compare.md sets them apart."
        )
    if ref.get("hash") is None:
        return f"note: {ds_id}: the reference records no content hash; its bytes cannot be checked"
    return ""
