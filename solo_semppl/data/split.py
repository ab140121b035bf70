"""Semi-supervised splits: which dataset indices keep their label (SPEC 1).

Sources: SimCLR-format ImageNet lists (``1percent.txt``: one training file name a line, the
WordNet id before ``_`` is the class), index files (one dataset index a line, ``#`` comments;
PAWS' CIFAR-10 ``spc.4000_split.*.txt`` are of this kind: indices into the 50,000-image
training set), or a class-balanced draw (a fraction or a count per class, seeded).
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from solo_semppl.io.atomic import write_text_atomic


@dataclass(frozen=True)
class LabelledSplit:
    """Sorted int64 dataset indices that are labelled, the dataset size and where they came from."""

    labelled: np.ndarray
    num_samples: int
    source: str

    def mask(self) -> torch.Tensor:
        """[num_samples] bool, True for labelled indices."""
        mask = torch.zeros(self.num_samples, dtype=torch.bool)
        mask[torch.from_numpy(self.labelled)] = True
        return mask

    def sha256(self) -> str:
        """Stable digest of the dataset size and the sorted indices."""
        text = f"{self.num_samples}:" + ",".join(map(str, self.labelled.tolist()))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> Dict:
        return {"labelled": self.labelled.tolist(), "num_samples": self.num_samples, "source": self.source}

    @classmethod
    def from_json(cls, record: Mapping) -> "LabelledSplit":
        return make_split(record["labelled"], record["num_samples"], record.get("source", "json"))


def make_split(indices: Sequence[int], num_samples: int, source: str) -> "LabelledSplit":
    """A split from indices; ValueError for duplicates or indices outside [0, num_samples)."""
    array = np.asarray(list(indices), dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_samples):
        bad = array[(array < 0) | (array >= num_samples)][:5].tolist()
        raise ValueError(f"{source}: indices {bad} are outside the dataset [0, {num_samples})")
    unique = np.unique(array)
    if unique.size != array.size:
        raise ValueError(f"{source}: {array.size - unique.size} duplicated indices")
    return LabelledSplit(unique, num_samples, source)


def keep_only(split: LabelledSplit, keep: np.ndarray) -> Tuple[LabelledSplit, int]:
    """The split over the samples where ``keep`` ([num_samples] bool) is True, renumbered in
    order (what a dataset that leaves the other samples out indexes), and how many labelled
    samples were left out."""
    keep = np.asarray(keep, dtype=bool)
    if keep.size != split.num_samples:
        raise ValueError(f"split ({split.source}) is for {split.num_samples} images, the mask for {keep.size}")
    position = np.cumsum(keep) - 1
    kept = split.labelled[keep[split.labelled]]
    return LabelledSplit(position[kept], int(keep.sum()), split.source), int(split.labelled.size - kept.size)


def read_lines(path) -> List[str]:
    if not os.path.isfile(path):
        raise ValueError(f"split file {path}: not found")
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"split file {path}: empty (expected one file name or index a line)")
    return lines


def split_from_index_file(path, num_samples: int) -> LabelledSplit:
    """One dataset index a line (PAWS CIFAR lists)."""
    lines = read_lines(path)
    bad = [line for line in lines if not line.lstrip("-").isdigit()][:3]
    if bad:
        raise ValueError(f"split file {path}: expected one integer index a line, got {bad}")
    return make_split([int(line) for line in lines], num_samples, str(path))


def split_from_simclr_list(path, sample_paths: Sequence[str]) -> LabelledSplit:
    """SimCLR ImageNet lists: file names matched to the dataset's files by basename; the class
    prefix (before ``_``) must be the sample's folder name."""
    lines = read_lines(path)
    position = {os.path.basename(p): i for i, p in enumerate(sample_paths)}
    missing = [name for name in lines if name not in position]
    if missing:
        raise ValueError(
            f"split file {path}: {len(missing)} of {len(lines)} names are not in the dataset "
            f"({len(sample_paths)} images), e.g. {missing[:3]}"
        )
    wrong = [n for n in lines if os.path.basename(os.path.dirname(sample_paths[position[n]])) != n.split("_")[0]]
    if wrong:
        raise ValueError(f"split file {path}: {len(wrong)} names sit in a class folder other than their prefix, e.g. {wrong[:3]}")
    return make_split([position[name] for name in lines], len(sample_paths), str(path))


def draw_per_class(targets: Sequence[int], count: Callable[[int], int], rng: np.random.Generator) -> np.ndarray:
    """The one stratified draw: for each class c (targets >= 0; -1 is never drawn), in class
    order, ``count(n_c)`` of its positions without replacement (``rng.choice``); int64."""
    targets = np.asarray(targets, dtype=np.int64)
    drawn = [rng.choice(members, size=count(members.size), replace=False)
             for members in (np.flatnonzero(targets == c) for c in np.unique(targets[targets >= 0]))]
    return np.concatenate(drawn).astype(np.int64) if drawn else np.zeros(0, dtype=np.int64)


def split_class_balanced(targets: Sequence[int], *, fraction: Optional[float] = None, per_class: Optional[int] = None,
                         seed: int = 0, min_per_class: int = 1) -> LabelledSplit:
    """Per class, round(fraction * n_c) (at least ``min_per_class``, at most n_c) or exactly
    ``per_class`` images (all of a smaller class), drawn with a seeded generator. Images with
    target -1 (unlabelled by nature, e.g. STL-10's unlabelled part) are never drawn."""
    if (fraction is None) == (per_class is None):
        raise ValueError("set exactly one of fraction / per_class")

    def count(n: int) -> int:
        return min(n, per_class if per_class is not None else max(min_per_class, int(round(fraction * n))))

    indices = draw_per_class(targets, count, np.random.default_rng(seed))
    source = f"fraction={fraction}" if fraction is not None else f"per_class={per_class}"
    return make_split(indices, len(targets), f"{source} seed={seed} min_per_class={min_per_class}")


def infer_format(path) -> str:
    return "index" if all(line.lstrip("-").isdigit() for line in read_lines(path)[:100]) else "simclr"


def build_split(cfg: Mapping, targets: Sequence[int], sample_paths: Optional[Sequence[str]]) -> LabelledSplit:
    """From config keys: ``file`` (+ ``format``: auto | simclr | paws | index), or ``fraction`` /
    ``per_class`` (+ ``seed``, ``min_per_class``). Exactly one of file / fraction / per_class."""
    given = [k for k in ("file", "fraction", "per_class") if cfg.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f"set exactly one of semi_supervised.file / fraction / per_class (got {given})")
    if cfg.get("file") is not None:
        fmt = cfg.get("format") or "auto"
        fmt = infer_format(cfg["file"]) if fmt == "auto" else fmt
        if fmt == "simclr":
            if sample_paths is None:
                raise ValueError(f"split file {cfg['file']}: SimCLR name lists need an image-folder dataset")
            return split_from_simclr_list(cfg["file"], sample_paths)
        return split_from_index_file(cfg["file"], len(targets))
    return split_class_balanced(targets, fraction=cfg.get("fraction"), per_class=cfg.get("per_class"),
                                seed=cfg.get("seed", 0), min_per_class=cfg.get("min_per_class", 1))


def validate_split(split: LabelledSplit, targets: Sequence[int], num_classes: int) -> List[str]:
    """Raises ValueError for an empty split, a size mismatch or labels outside
    [0, num_classes); returns warnings (a class without any labelled image)."""
    targets = np.asarray(targets, dtype=np.int64)
    if split.num_samples != targets.size:
        raise ValueError(f"split ({split.source}) is for {split.num_samples} images, the dataset has {targets.size}")
    if split.labelled.size == 0:
        raise ValueError(f"split ({split.source}) has no labelled image")
    labels = targets[split.labelled]
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"split ({split.source}): labels {sorted(set(bad.tolist()))[:5]} outside [0, {num_classes})")
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    return [f"split ({split.source}) leaves {len(missing)} classes without a labelled image: {missing[:10]}"] if missing else []


def save_split(split: LabelledSplit, path) -> None:
    """split.json (to_json + sha256), written atomically."""
    write_text_atomic(path, json.dumps({"sha256": split.sha256(), **split.to_json()}))
