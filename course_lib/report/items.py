"""Item analysis: for each graded cell, how hard it was and how well it separates strong from weak students.

Discrimination is the point-biserial correlation of the cell's score with the rest of the score (the total
without this cell), as PrairieLearn reports it: near 1, the students who pass this cell are the ones who do
well elsewhere; near 0 or negative, the cell measures something else (or is broken). It is the Pearson
correlation, which for a pass/fail cell is the point-biserial one; blank when it is undefined (fewer than two
students, or everyone scored the same on the cell or on the rest).
"""

import math
from dataclasses import dataclass

import numpy as np

from course_lib.report.results import ClassResults

COLUMNS = ["cell", "points", "attempted", "full_marks", "mean_score", "discrimination"]


@dataclass(frozen=True)
class Item:
    """One cell's statistics over the students with a score for it (`attempted`)."""

    cell: str
    points: float
    attempted: int
    full_marks: int
    mean_score: float | None
    discrimination: float | None

    def row(self) -> dict:
        blank = lambda v: "" if v is None else round(v, 4) + 0.0  # noqa: E731 - a one-line formatter; + 0.0: -0.0 is 0
        return {"cell": self.cell, "points": self.points, "attempted": self.attempted,
                "full_marks": self.full_marks, "mean_score": blank(self.mean_score),
                "discrimination": blank(self.discrimination)}


def point_biserial(cell: np.ndarray, rest: np.ndarray) -> float | None:
    """Pearson correlation of `cell` with `rest`; None where it is undefined."""
    if len(cell) < 2 or np.ptp(cell) == 0 or np.ptp(rest) == 0:
        return None
    r = float(np.corrcoef(cell, rest)[0, 1])
    return None if math.isnan(r) else r


def analyse(results: ClassResults) -> list[Item]:
    """One Item per graded cell, hardest first (lowest mean fraction of its points), then least
    discriminating first, so the cells to look at stand out at the top."""
    scored = [s.cell_scores for s in results.students if s.cell_scores]
    items = []
    for cell in results.cells:
        have = [s for s in scored if s.get(cell.name) is not None]
        own = np.array([s[cell.name] for s in have], dtype=float)
        rest = np.array([sum(v for k, v in s.items() if k != cell.name and v is not None) for s in have], float)
        items.append(Item(cell.name, cell.points, len(have), int(np.sum(own >= cell.points)),
                          float(own.mean()) if len(own) else None, point_biserial(own, rest)))
    return sorted(items, key=_difficulty)


def _difficulty(item: Item) -> tuple:
    share = item.mean_score / item.points if item.mean_score is not None and item.points else 1.0
    return (share, item.discrimination if item.discrimination is not None else 1.0, item.cell)
