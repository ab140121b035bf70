"""The ``semi_supervised`` group against the training data: sources that cannot carry a split are
clear errors naming the key (no solo-learn needed)."""
import pytest
from omegaconf import OmegaConf

from solo_semppl.data.semi_config import resolve_split

from test_data_folder_check import make_folder


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
