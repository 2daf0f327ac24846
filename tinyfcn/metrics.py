"""Segmentation metrics from one confusion matrix -- the four the FCN paper reports.

Every metric in the paper's Table 1 is a function of the ``K x K`` confusion matrix ``n``,
where ``n[i, j]`` counts pixels of true class ``i`` predicted as ``j`` and ``t_i`` is the
number of pixels of class ``i``:

- pixel accuracy            ``sum_i n_ii / sum_i t_i``
- mean accuracy             ``(1/K) sum_i n_ii / t_i``
- mean IoU ("mean IU")      ``(1/K) sum_i n_ii / (t_i + sum_j n_ji - n_ii)``
- frequency-weighted IoU    ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``

Accumulating the matrix over a whole split and computing the metrics once at the end is
what makes mean IoU a *dataset* statistic (averaging per-image IoUs gives a different,
noisier number). Pixels labelled ``ignore_index`` (255 in VOC: object borders and
"difficult" regions) are dropped before counting. Classes that never occur in the truth
and are never predicted have an undefined IoU (nan) and are left out of the means; the
report says so (``absent``), or a class nobody labelled would read as perfectly learnt.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ConfusionMatrix:
    """Accumulates ``matrix[truth, prediction]`` pixel counts over batches."""

    def __init__(
        self, num_classes: int, ignore_index: int = 255, device: torch.device | str | None = None
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.ignored = torch.zeros((), dtype=torch.int64, device=device)  # pixels dropped

    def reset(self) -> None:
        self.matrix.zero_()
        self.ignored.zero_()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch. ``pred`` holds class indices (take ``argmax(1)`` of logits first)."""
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ"
            )
        k = self.num_classes
        target = target.reshape(-1).to(self.matrix.device, torch.int64)
        pred = pred.reshape(-1).to(self.matrix.device, torch.int64)
        keep = target != self.ignore_index
        self.ignored += keep.numel() - keep.sum()
        target, pred = target[keep], pred[keep]
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= k):
            raise ValueError(f"target holds labels outside 0..{k - 1} (and {self.ignore_index})")
        if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= k):
            raise ValueError(f"prediction holds classes outside 0..{k - 1}")
        # One bincount over the pair index truth*K + prediction fills the whole matrix.
        self.matrix += torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)

    def all_reduce(self) -> None:
        """Sum the matrix over all ranks, so every rank reports the whole split's metrics."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)
            dist.all_reduce(self.ignored, op=dist.ReduceOp.SUM)

    def dice(self) -> list[float]:
        """Per-class Dice (the F1 score), ``2 n_ii / (t_i + sum_j n_ji)``; nan where a class is
        absent from truth and prediction. It equals ``2 IoU / (1 + IoU)``: the same ranking of
        classes as IoU, higher everywhere between 0 and 1 (medical imaging reports it)."""
        n = self.matrix.double().cpu()
        both = n.sum(0) + n.sum(1)
        return torch.where(both > 0, 2 * n.diag() / both.clamp(min=1), math.nan).tolist()

    def compute(self, class_names: list[str] | None = None) -> dict[str, float | list]:
        """The paper's four metrics plus per-class IoU (nan where a class is absent).

        ``class_names`` (one per class) are kept in the result as ``"class_names"``, so
        :func:`format_metrics` can label each IoU without being told them again.
        """
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(
                f"{len(class_names)} class names for a {self.num_classes}-class matrix"
            )
        n = self.matrix.double().cpu()
        hits = n.diag()
        truth = n.sum(1)  # t_i
        predicted = n.sum(0)  # sum_j n_ji
        union = truth + predicted - hits
        total = truth.sum()
        acc = torch.where(truth > 0, hits / truth.clamp(min=1), math.nan)
        iou = torch.where(union > 0, hits / union.clamp(min=1), math.nan)
        present = truth > 0
        metrics: dict[str, float | list] = {  # an empty matrix: 0 / 0, nan everywhere
            "pixel_accuracy": float(hits.sum() / total),
            "mean_accuracy": float(acc.nanmean()),
            "mean_iou": float(iou.nanmean()),
            "fw_iou": float((truth[present] * iou[present]).sum() / total),
            "iou": iou.tolist(),
        }
        if class_names is not None:
            metrics["class_names"] = list(class_names)
        return metrics


def format_metrics(metrics: dict[str, float | list], class_names: list[str] | None = None) -> str:
    """A small plain-text report: the four headline numbers, then IoU per class.

    Classes are named by ``class_names``, else by the ``"class_names"`` the metrics carry
    (:func:`tinyfcn.evaluate` puts M2NIST's there), else by their index.
    """
    m = metrics
    lines = [
        f"pixel accuracy {m['pixel_accuracy']:.4f}   mean accuracy      {m['mean_accuracy']:.4f}",
        f"mean IoU       {m['mean_iou']:.4f}   freq.-weighted IoU {m['fw_iou']:.4f}",
    ]
    ious = metrics["iou"]
    assert isinstance(ious, list)
    names = class_names or metrics.get("class_names") or [str(i) for i in range(len(ious))]
    width = max(len(n) for n in names)
    absent = [name for name, iou in zip(names, ious, strict=True) if math.isnan(iou)]
    if absent:
        lines.append(
            f"means over {len(ious) - len(absent)} of {len(ious)} classes: {', '.join(absent)} "
            "absent (no pixel labelled or predicted)"
        )
    lines += [
        f"  {name:<{width}}  " + ("absent" if math.isnan(iou) else f"IoU {iou:.4f}")
        for name, iou in zip(names, ious, strict=True)
    ]
    return "\n".join(lines)
