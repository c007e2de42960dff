"""Demand classes of Syntetos and Boylan (2005): smooth, erratic, intermittent and lumpy, from a
series' average inter-demand interval (ADI) and the squared coefficient of variation of its
non-zero demand sizes (CV²), over its recent history.

The cut-offs ADI 1.32 and CV² 0.49 are where Croston-type methods (intermittent, lumpy) start
to beat exponential smoothing of the raw series (smooth, erratic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
CLASS_DAYS = 182  # the recent history a class is read from: half a year of days
SMOOTH, ERRATIC, INTERMITTENT, LUMPY = "smooth", "erratic", "intermittent", "lumpy"
DEMAND_CLASSES = (SMOOTH, ERRATIC, INTERMITTENT, LUMPY)
# Classes whose demand is mostly zero days, where Croston-type methods are meant to serve.
SPARSE_CLASSES = (INTERMITTENT, LUMPY)


@dataclass(frozen=True, eq=False)
class DemandClasses:
    """Per series: ADI (known days per day with a sale; inf when nothing sold), CV² of the
    non-zero sizes (0 with fewer than two), and the class."""

    adi: np.ndarray
    cv2: np.ndarray
    classes: np.ndarray

    def of(self, demand_class: str) -> np.ndarray:
        """Which series are in `demand_class`."""
        return self.classes == demand_class


def classify(quantity: np.ndarray, *, days: int = CLASS_DAYS) -> DemandClasses:
    """The demand class of each row of a [series, days] history, from its last `days` days;
    unknown (NaN) days, censored ones included, are left out. A series that sold nothing in
    them is intermittent (its next sale, if any, is the question)."""
    recent = np.asarray(quantity, dtype=np.float64)[:, -days:] if days else quantity
    known = ~np.isnan(recent)
    sold = known & (recent > 0)
    n_known = known.sum(axis=1)
    n_sold = sold.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        adi = np.where(n_sold > 0, n_known / np.maximum(n_sold, 1), np.inf)
        sizes = np.where(sold, recent, np.nan)
        mean = np.nanmean(np.where(n_sold[:, None] > 0, sizes, 0.0), axis=1)
        std = np.nanstd(np.where(n_sold[:, None] > 0, sizes, 0.0), axis=1)
        cv2 = np.where(n_sold > 1, (std / mean) ** 2, 0.0)
    sparse = adi >= ADI_CUTOFF
    variable = cv2 >= CV2_CUTOFF
    classes = np.select(
        [~sparse & ~variable, ~sparse & variable, sparse & ~variable],
        [SMOOTH, ERRATIC, INTERMITTENT],
        default=LUMPY,
    ).astype(object)
    return DemandClasses(adi=adi, cv2=cv2, classes=classes)
