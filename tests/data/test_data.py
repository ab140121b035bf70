"""Splits, the digits folder and the labelled-share sampler (no solo-learn needed)."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from solo_semppl.data.sampler import LabelledShareBatchSampler
from solo_semppl.data.split import (
    LabelledSplit, build_split, draw_per_class, split_class_balanced, split_from_index_file, split_from_simclr_list, validate_split,
)

from conftest import REPO

SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data split files are not present")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@needs_shared
def test_simclr_one_percent_list_against_a_folder_made_from_it():
    path = SHARED / "imagenet_subsets" / "1percent.txt"
    assert sha256(path) == "71e82a48ba78252683ae334c4d019ebd5c6e855b9599c1389fbe83eb9549cf17"
    names = path.read_text().split()
    extra = [f"{n.split('_')[0]}_extra{i}.JPEG" for i, n in enumerate(names[:500])]
    samples = sorted(f"/data/train/{n.split('_')[0]}/{n}" for n in names + extra)
    split = split_from_simclr_list(path, samples)
    assert len(split.labelled) == 12811 and split.num_samples == 13311
    classes = {Path(samples[i]).parent.name for i in split.labelled}
    assert len(classes) == 1000
    assert all(Path(samples[i]).name in set(names) for i in split.labelled[:100])


@needs_shared
def test_paws_cifar_lists_are_index_files():
    path = SHARED / "cifar10_subsets" / "spc.4000_split.73.txt"
    split = build_split({"file": str(path)}, [i % 10 for i in range(50000)], None)
    assert len(split.labelled) == 4000 and split.source == str(path)


def test_simclr_list_errors_name_the_file_and_the_missing_images(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("n01_1.JPEG\nn02_9.JPEG\n")
    samples = ["/d/n01/n01_1.JPEG", "/d/n02/n02_2.JPEG"]
    with pytest.raises(ValueError, match=r"list.txt: 1 of 2 names are not in the dataset.*n02_9"):
        split_from_simclr_list(listing, samples)
    listing.write_text("n01_1.JPEG\n")
    with pytest.raises(ValueError, match="class folder other than their prefix"):
        split_from_simclr_list(listing, ["/d/n02/n01_1.JPEG"])
    listing.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="empty"):
        split_from_simclr_list(listing, samples)


@pytest.mark.parametrize("content, message", [("1\n7\n", r"outside the dataset \[0, 5\)"), ("1\n1\n", "duplicated"),
                                               ("a\n", "integer index")])
def test_index_file_errors(tmp_path, content, message):
    path = tmp_path / "idx.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        split_from_index_file(path, 5)


def test_class_balanced_counts_determinism_and_minimum():
    targets = [c for c in range(5) for _ in range(20 + c)]
    a = split_class_balanced(targets, fraction=0.1, seed=3)
    b = split_class_balanced(targets, fraction=0.1, seed=3)
    assert np.array_equal(a.labelled, b.labelled) and a.sha256() == b.sha256()
    counts = np.bincount(np.asarray(targets)[a.labelled])
    assert counts.tolist() == [max(1, round(0.1 * (20 + c))) for c in range(5)]
    tiny = split_class_balanced(targets, fraction=0.01, seed=0)
    assert np.bincount(np.asarray(targets)[tiny.labelled]).tolist() == [1] * 5
    exact = split_class_balanced(targets, per_class=4, seed=0)
    assert np.bincount(np.asarray(targets)[exact.labelled]).tolist() == [4] * 5
    assert split_class_balanced(targets, fraction=0.1, seed=4).sha256() != a.sha256()
    unlabelled_part = split_class_balanced([0, 1, -1, -1, 0, 1], per_class=2)
    assert set(unlabelled_part.labelled.tolist()) == {0, 1, 4, 5}


def test_the_stratified_draw_matches_a_loop_and_serves_splits_validation_and_holdout():
    from solo_semppl.data.digits import stratified_val
    from solo_semppl.eval.data import holdout

    targets = np.array([c for c in (2, 0, 1) for _ in range(7 + c)] + [-1] * 5)
    drawn = draw_per_class(targets, lambda n: n // 3, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # the loop reference: class order, rng.choice without replacement
    loop = np.concatenate([rng.choice(np.flatnonzero(targets == c), size=(targets == c).sum() // 3, replace=False)
                           for c in (0, 1, 2)])
    assert np.array_equal(drawn, loop) and drawn.dtype == np.int64 and len(set(drawn.tolist())) == drawn.size
    assert np.array_equal(split_class_balanced(targets, per_class=2, seed=5).labelled,
                          np.sort(draw_per_class(targets, lambda n: 2, np.random.default_rng(5))))
    val = stratified_val(np.abs(targets), 0.25, seed=1)
    assert np.array_equal(np.flatnonzero(val), np.sort(draw_per_class(np.abs(targets), lambda n: round(0.25 * n), np.random.default_rng(1))))
    labelled = np.array([0, 1, 2, 9, 10, 18, 19, 20, 21, 22])  # 3 of class 2, 2 of class 0, 5 of class 1
    fit, held = holdout(labelled, targets, fraction=0.4, seed=0)
    assert np.array_equal(np.sort(np.concatenate([fit, held])), labelled) and not set(fit) & set(held)
    assert np.bincount(targets[held], minlength=3).tolist() == [1, 2, 1]  # round(0.4 n), a class keeps one to fit
    assert np.bincount(targets[fit], minlength=3).tolist() == [1, 3, 2]


def test_validate_split_errors_and_warnings():
    targets = [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="no labelled image"):
        validate_split(LabelledSplit(np.zeros(0, dtype=np.int64), 6, "empty"), targets, 3)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        validate_split(LabelledSplit(np.array([4]), 6, "s"), targets, 2)
    with pytest.raises(ValueError, match="is for 5 images"):
        validate_split(LabelledSplit(np.array([1]), 5, "s"), targets, 3)
    warnings = validate_split(LabelledSplit(np.array([0, 2]), 6, "s"), targets, 3)
    assert len(warnings) == 1 and "[2]" in warnings[0]
    with pytest.raises(ValueError, match="exactly one"):
        build_split({"fraction": 0.1, "per_class": 2}, targets, None)


def test_split_json_round_trip_and_mask():
    split = split_class_balanced([0, 1] * 10, fraction=0.2)
    again = LabelledSplit.from_json(split.to_json())
    assert again.sha256() == split.sha256()
    assert split.mask().sum() == len(split.labelled) and split.mask()[split.labelled].all()


def test_digits_folder_is_complete_idempotent_and_atomic(tmp_path, monkeypatch):
    from torchvision.datasets import ImageFolder

    from solo_semppl.data import digits

    root = digits.materialise_digits(tmp_path)
    train, val = ImageFolder(root / "train"), ImageFolder(root / "val")
    assert len(train) + len(val) == 1797 and train.classes == [str(c) for c in range(10)]
    assert train[0][0].size == (32, 32) and train[0][0].mode == "RGB"
    assert abs(len(val) - 0.2 * 1797) < 10
    stamp = (root / "split.json").stat().st_mtime_ns
    assert digits.materialise_digits(tmp_path) == root and (root / "split.json").stat().st_mtime_ns == stamp

    def broken_save(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("PIL.Image.Image.save", broken_save)
    with pytest.raises(OSError):
        digits.materialise_digits(tmp_path / "other")
    assert not (tmp_path / "other" / "digits-32px-seed0").exists()
    assert list((tmp_path / "other").iterdir()) == []


def test_labelled_share_sampler():
    mask = torch.zeros(40, dtype=torch.bool)
    mask[:6] = True
    batches = list(LabelledShareBatchSampler(mask, 8, 2, seed=1))
    assert len(batches) == 34 // 6
    for batch in batches:
        assert len(batch) == 8 and sum(mask[i] for i in batch) == 2
    unlabelled = [i for b in batches for i in b if not mask[i]]
    assert len(unlabelled) == len(set(unlabelled))
    assert batches == list(LabelledShareBatchSampler(mask, 8, 2, seed=1))
    other = LabelledShareBatchSampler(mask, 8, 2, seed=1)
    other.set_epoch(1)
    assert list(other) != batches
    ranks = [list(LabelledShareBatchSampler(mask, 4, 1, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    for b0, b1 in zip(*ranks):
        assert not set(b0[1:]) & set(b1[1:])
    with pytest.raises(ValueError, match="labelled_per_batch"):
        LabelledShareBatchSampler(mask, 8, 8)


def test_balanced_labelled_share_has_every_class_equally_and_the_natural_epoch_length():
    targets = torch.arange(60) % 3
    mask = torch.zeros(60, dtype=torch.bool)
    mask[[0, 1, 2, 3, 6, 9, 12]] = True  # class 0: 5 labelled images, classes 1 and 2: one each
    for replicas in (1, 2):
        for rank in range(replicas):
            sampler = LabelledShareBatchSampler(mask, 10, 3, seed=2, num_replicas=replicas, rank=rank, labelled_targets=targets)
            batches = list(sampler)
            assert len(batches) == 60 // (10 * replicas)  # as many steps as natural sampling
            for batch in batches:
                assert [int(targets[i]) for i in batch[:3]] == [0, 1, 2] and all(mask[i] for i in batch[:3])
                assert not any(mask[i] for i in batch[3:])
    drawn = [i for batch in LabelledShareBatchSampler(mask, 10, 3, seed=2, labelled_targets=targets) for i in batch[:1]]
    assert set(drawn) == {0, 3, 6, 9, 12} and drawn != sorted(drawn)  # class 0 cycles through reshuffled passes
    with pytest.raises(ValueError, match="labelled_per_batch = 4: a class-balanced share needs a multiple of the 3 classes"):
        LabelledShareBatchSampler(mask, 10, 4, labelled_targets=targets)


def test_lightning_reaches_the_labelled_share_sampler_epoch():
    pytest.importorskip("lightning", reason="lightning is not installed (it comes with the solo extra)")
    from lightning.fabric.utilities.data import _set_sampler_epoch

    mask = torch.zeros(40, dtype=torch.bool)
    mask[:6] = True
    sampler = LabelledShareBatchSampler(mask, 8, 2, seed=1)
    loader = torch.utils.data.DataLoader(list(range(40)), batch_sampler=sampler)
    first = list(loader)
    _set_sampler_epoch(loader, 3)
    assert sampler.epoch == 3 and [b.tolist() for b in loader] != [b.tolist() for b in first]
