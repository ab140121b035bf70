"""The ``semi_supervised`` group against the training data: sources that cannot carry a split are
clear errors naming the key (no solo-learn needed)."""
import pytest
from omegaconf import OmegaConf

from solo_semppl.data.semi_config import resolve_split

from image_files import make_folder


@pytest.mark.parametrize(
    "data, semi, message",
    [
        ({}, {"file": "/no/such/split.txt"}, r"semi_supervised.file = '/no/such/split.txt': expected the path of an existing split file"),
        ({"format": "h5"}, {"fraction": 0.5}, r"semi_supervised splits need data.format image_folder or dali, not h5"),
        ({"no_labels": True}, {"fraction": 0.5}, r"semi_supervised needs labels: data.no_labels must be false"),
        ({"train_path": "/no/such/folder"}, {"fraction": 0.5}, r"data.train_path='/no/such/folder' is not a directory"),
        ({"dataset": "cifar10", "train_path": "/no/such/folder"}, {"fraction": 0.5}, r"data.train_path='/no/such/folder': Dataset not found"),
    ],
    ids=["missing-split-file", "h5", "no-labels", "missing-folder", "cifar-not-downloaded"],
)
def test_training_sets_that_cannot_carry_the_split_are_rejected(tmp_path, data, semi, message):
    make_folder(tmp_path)
    cfg = OmegaConf.create({
        "data": {"dataset": "custom", "format": "image_folder", "train_path": str(tmp_path), "num_classes": 3,
                 "no_labels": False, **data},
        "semi_supervised": semi,
    })
    with pytest.raises(ValueError, match=message):
        resolve_split(cfg)


@pytest.mark.parametrize(
    "semi, message",
    [
        ({"per_class": 2, "labelled_per_batch": 7}, r"semi_supervised.labelled_per_batch = 7: larger than the labelled set \(6 images\); expected at most 6"),
        ({"per_class": 2, "labelled_per_batch": 4, "balanced_labelled": True}, r"labelled_per_batch = 4 with balanced_labelled: expected a multiple of the 3 classes"),
        ({"file": "uneven", "labelled_per_batch": 6, "balanced_labelled": True}, r"labelled_per_batch = 6 with balanced_labelled: 2 per class, but class 1 has 1 labelled image\(s\); expected at most 3"),
        ({"per_class": 2, "balanced_labelled": True}, r"semi_supervised.balanced_labelled = true needs semi_supervised.labelled_per_batch >= 1"),
        ({"per_class": 2, "balanced_labelled": "yes"}, r"semi_supervised.balanced_labelled = 'yes': expected true or false"),
    ],
    ids=["share-above-labelled-set", "not-a-multiple-of-classes", "more-per-class-than-labelled", "balanced-without-share", "not-a-flag"],
)
def test_a_labelled_share_the_labelled_images_cannot_fill_is_rejected(tmp_path, semi, message):
    make_folder(tmp_path)
    if semi.get("file") == "uneven":  # 4 labelled images of class 0, one of classes 1 and 2
        (tmp_path / "uneven.txt").write_text("0\n1\n2\n3\n4\n8\n")
        semi = {**semi, "file": str(tmp_path / "uneven.txt"), "format": "index"}
    cfg = OmegaConf.create({"data": {"dataset": "custom", "format": "image_folder", "train_path": str(tmp_path),
                                     "num_classes": 3, "no_labels": False}, "semi_supervised": semi})
    with pytest.raises(ValueError, match=message):
        resolve_split(cfg)
    cfg.semi_supervised = {"per_class": 2, "labelled_per_batch": 3, "balanced_labelled": True}  # one of each class fits
    assert len(resolve_split(cfg).labelled) == 6
