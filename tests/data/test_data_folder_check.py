"""Pre-flight image-folder check: empty class folders, non-image files, unreadable images with
bad_images error / skip, scan depth, and split indices that stay right after a skip (no
solo-learn needed)."""
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from solo_semppl.data.folder_check import check_image_folders, image_folder, scan_folder
from solo_semppl.data.semi_config import resolve_split
from solo_semppl.data.split import keep_only, make_split

from image_files import corrupt, make_folder, write_truncated


def data_cfg(root, val=None, **data):
    return OmegaConf.create({
        "data": {"dataset": "custom", "format": "image_folder", "train_path": str(root), "val_path": val,
                 "num_workers": 0, "num_classes": 3, "no_labels": False, **data},
        "semi_supervised": {},
    })


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "class1b").mkdir()
    (tmp_path / "class1b" / "notes.txt").write_text("only a note")
    with pytest.raises(ValueError, match=r"data.train_path = .*class folder\(s\) without readable images \['class1b'\].*shift"):
        check_image_folders(data_cfg(tmp_path))


@pytest.mark.parametrize("layout, message", [("missing", "not a directory"), ("flat", "no class folders")])
def test_missing_or_flat_folder_is_an_error(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout == "flat":
        root.mkdir()
        Image.new("RGB", (4, 4)).save(root / "lonely.png")
    with pytest.raises(ValueError, match=rf"data.train_path = '{root}': {message}"):
        check_image_folders(data_cfg(root))


def test_non_image_files_are_not_loaded_and_counted_in_a_warning(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "class0" / "README.md").write_text("about class 0")
    (tmp_path / "class2" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "index.csv").write_text("a,b")
    cfg = data_cfg(tmp_path)
    with pytest.warns(UserWarning, match="3 files are not loaded as images"):
        lines = check_image_folders(cfg)
    assert sorted(line.split("\t")[1] for line in lines) == ["class0/README.md", "class2/.DS_Store", "index.csv"]
    assert cfg.data.skipped_images.train == []
    assert len(image_folder(str(tmp_path))) == 12


def test_unreadable_image_is_an_error_listing_it_by_default(tmp_path):
    make_folder(tmp_path)
    corrupt(tmp_path / "class1" / "1_2.png")
    write_truncated(tmp_path / "class2" / "2_9.png")
    with pytest.raises(ValueError, match=r"data.train_path: 2 of 13 images cannot be read, e.g. .*1_2.png: .*2_9.png: .*data.bad_images=skip"):
        check_image_folders(data_cfg(tmp_path))


def test_skip_leaves_unreadable_images_out_with_a_warning_and_a_count(tmp_path):
    train, val = make_folder(tmp_path / "train"), make_folder(tmp_path / "val", per_class=2)
    corrupt(train / "class1" / "1_2.png")
    corrupt(val / "class0" / "0_0.png")
    cfg = data_cfg(train, val=str(val), bad_images="skip")
    with pytest.warns(UserWarning) as caught:
        lines = check_image_folders(cfg)
    messages = " ".join(str(w.message) for w in caught)
    assert "leaving out 1 of 12 images" in messages and "leaving out 1 of 6 images" in messages
    assert OmegaConf.to_container(cfg.data.skipped_images) == {"train": ["class1/1_2.png"], "val": ["class0/0_0.png"]}
    assert [line.split("\t")[:2] for line in lines] == [["train", "class1/1_2.png"], ["val", "class0/0_0.png"]]
    dataset = image_folder(str(train), skipped=cfg.data.skipped_images.train)
    assert len(dataset) == 11 and all("1_2.png" not in p for p, _ in dataset.samples)
    assert dataset.targets == [t for _, t in dataset.samples]


def test_skip_that_empties_a_class_is_still_an_error(tmp_path):
    make_folder(tmp_path, per_class=1)
    corrupt(tmp_path / "class1" / "1_0.png")
    with pytest.raises(ValueError, match=r"without readable images \['class1'\]"):
        check_image_folders(data_cfg(tmp_path, bad_images="skip"))


def test_scan_depth_switch(tmp_path):
    make_folder(tmp_path)
    write_truncated(tmp_path / "class0" / "0_9.jpg")
    assert scan_folder(str(tmp_path), "k", True).bad == {}
    assert list(scan_folder(str(tmp_path), "k", "full").bad) == [str(tmp_path / "class0" / "0_9.jpg")]
    corrupt(tmp_path / "class0" / "0_8.png")
    assert scan_folder(str(tmp_path), "k", False).bad == {}
    check_image_folders(data_cfg(tmp_path, scan_images=False))  # nothing read, nothing raised


@pytest.mark.parametrize(
    "data, message",
    [
        ({"bad_images": "ignore"}, r"data.bad_images = 'ignore': expected one of \['error', 'skip'\]"),
        ({"scan_images": "fast"}, r"data.scan_images = 'fast': expected true, false or 'full'"),
        ({"bad_images": "skip", "scan_images": False}, r"data.bad_images = 'skip' needs data.scan_images"),
        ({"bad_images": "skip", "format": "dali"}, r"works with data.format image_folder only"),
    ],
)
def test_bad_image_options_are_rejected(tmp_path, data, message):
    make_folder(tmp_path)
    corrupt(tmp_path / "class0" / "0_0.png")
    with pytest.raises(ValueError, match=message):
        check_image_folders(data_cfg(tmp_path, **data))


def test_binary_datasets_and_label_free_folders_are_not_scanned(tmp_path):
    for cfg in (data_cfg(tmp_path / "nowhere", dataset="cifar10"), data_cfg(tmp_path / "nowhere", no_labels=True)):
        assert check_image_folders(cfg) == [] and OmegaConf.to_container(cfg.data.skipped_images) == {}


def test_keep_only_renumbers_and_counts_the_dropped():
    split, dropped = keep_only(make_split([0, 2, 3, 5], 6, "t"), np.array([1, 1, 0, 1, 1, 1], bool))
    assert split.labelled.tolist() == [0, 2, 4] and split.num_samples == 5 and dropped == 1


def skipped_folder(tmp_path):
    make_folder(tmp_path, per_class=4)
    corrupt(tmp_path / "class0" / "0_1.png")
    cfg = data_cfg(tmp_path, bad_images="skip")
    check_image_folders(cfg)
    return cfg, image_folder(str(tmp_path), skipped=cfg.data.skipped_images.train)


def test_class_balanced_split_is_drawn_on_the_dataset_without_skipped_images(tmp_path):
    cfg, dataset = skipped_folder(tmp_path)
    cfg.semi_supervised = {"per_class": 3}
    split = resolve_split(cfg)
    assert split.num_samples == len(dataset) == 11
    labels = [dataset.targets[i] for i in split.labelled]
    assert sorted(labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all("0_1.png" not in dataset.samples[i][0] for i in split.labelled)


def test_index_file_indexes_the_folder_as_listed_and_is_renumbered_after_a_skip(tmp_path):
    cfg, dataset = skipped_folder(tmp_path / "d")
    listed = image_folder(str(tmp_path / "d")).samples  # 12 images, 0_1.png at index 1
    (tmp_path / "split.txt").write_text("1\n2\n5\n")
    cfg.semi_supervised = {"file": str(tmp_path / "split.txt")}
    with pytest.warns(UserWarning, match="1 labelled images were left out as unreadable"):
        split = resolve_split(cfg)
    assert split.num_samples == 11
    assert [dataset.samples[i][0] for i in split.labelled] == [listed[2][0], listed[5][0]]


def test_run_datasets_get_the_robust_loader_and_lose_the_skipped_files(tmp_path):
    from torchvision.datasets import ImageFolder

    from solo_semppl.data.folder_check import robust_run_datasets
    from solo_semppl.data.image_loader import load_rgb

    cfg, _ = skipped_folder(tmp_path)

    class WithIndex(ImageFolder):  # like solo-learn's dataset_with_index(ImageFolder)
        pass

    train, other = WithIndex(str(tmp_path)), object()
    robust_run_datasets(cfg.data, train, other)
    assert train.loader is load_rgb and len(train) == 11 and len(train.targets) == 11
