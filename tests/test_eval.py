"""Evaluation on the labelled subset: run loading with key checks, k-NN against a brute-force
reference, hyperparameter choice without the validation set (no solo-learn needed)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from solo_semppl.backbones import tiny_cnn
from solo_semppl.data.split import save_split, split_class_balanced
from solo_semppl.eval.checkpoint import load_run
from solo_semppl.eval.knn import knn, knn_predict


def images(root, classes=3, per_class=10, size=16, seed=0, only=None):
    """Class c is brightness 60 c plus noise, in folder ``c<c>``; ``only`` keeps some classes."""
    rng = np.random.default_rng(seed)
    for c in range(classes) if only is None else only:
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size, size, 3), 60 * c, np.uint8) + rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i}.png")


@pytest.fixture()
def run_dir(tmp_path):
    images(tmp_path / "train")
    images(tmp_path / "val", per_class=4, seed=1)
    run = tmp_path / "run"
    run.mkdir()
    args = {"method": "semppl", "backbone": {"name": "tiny_cnn", "kwargs": {"width": 4}},
            "data": {"dataset": "custom", "train_path": str(tmp_path / "train"), "val_path": str(tmp_path / "val")},
            "augmentations": [{"crop_size": 16, "num_crops": 4, "horizontal_flip": {"prob": 0.0}}]}
    (run / "args.json").write_text(json.dumps(args))
    torch.manual_seed(0)
    state = {f"backbone.{k}": v for k, v in tiny_cnn(width=4).state_dict().items()}
    torch.save({"state_dict": {**state, "projector.0.weight": torch.zeros(2)}}, run / "m.ckpt")
    save_split(split_class_balanced([c for c in range(3) for _ in range(10)], per_class=5), run / "split.json")
    return run


def test_load_run_checks_the_backbone_keys(run_dir):
    run = load_run(run_dir)
    assert run.features_dim == 16 and len(run.split.labelled) == 15
    state = torch.load(run_dir / "m.ckpt")
    for broken, message in [
        ({k: v for k, v in state["state_dict"].items() if "features.0.0" not in k}, "missing"),
        ({**state["state_dict"], "backbone.features.0.0.weight": torch.zeros(1)}, "wrong shape"),
        ({**state["state_dict"], "backbone.extra": torch.zeros(1)}, "unexpected"),
        ({"projector.0.weight": torch.zeros(1)}, "no 'backbone.\\*' keys"),
    ]:
        torch.save({"state_dict": broken}, run_dir / "m.ckpt")
        with pytest.raises(ValueError, match=message):
            load_run(run_dir)
    (run_dir / "args.json").unlink()
    with pytest.raises(ValueError, match="no args.json"):
        load_run(run_dir / "m.ckpt")


def test_knn_predict_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    bank, labels, queries = torch.randn(30, 5, generator=g), torch.randint(0, 4, (30,), generator=g), torch.randn(7, 5, generator=g)
    got = knn_predict(bank, labels, queries, 4, k=6, temperature=0.1)
    bn, qn = torch.nn.functional.normalize(bank, dim=1), torch.nn.functional.normalize(queries, dim=1)
    for q in range(7):
        sims = sorted(((float(qn[q] @ bn[j]), int(labels[j])) for j in range(30)), reverse=True)[:6]
        scores = [sum(np.exp(s / 0.1) for s, lab in sims if lab == c) for c in range(4)]
        assert got[q].tolist() == pytest.approx(scores, rel=1e-4)


def test_hyperparameters_are_chosen_without_the_validation_set(run_dir, monkeypatch):
    from solo_semppl.eval import data, finetune as finetune_module

    calls = []
    original = data.dataset

    def spy(args, train, transform):
        calls.append(("train" if train else "val"))
        return original(args, train, transform)

    accuracy_calls = []
    original_accuracy = finetune_module.classifier.accuracy

    def spy_accuracy(model, loader, device="cpu"):
        accuracy_calls.append(len(loader.dataset))
        return original_accuracy(model, loader, device)

    monkeypatch.setattr(data, "dataset", spy)
    monkeypatch.setattr(finetune_module.classifier, "accuracy", spy_accuracy)
    result = finetune_module.finetune(load_run(run_dir), epochs=2, lr_grid=(0.01, 0.1), batch_size=8)
    # two held-out evaluations (3 held-out images: 20 % of 5 per class) then one on the 12 val images
    assert accuracy_calls == [3, 3, 12]
    assert result["num_labelled"] == 15 and result["num_held_out"] == 3 and result["lr"] in (0.01, 0.1)


def test_knn_and_linear_write_sensible_results(run_dir):
    from solo_semppl.eval.linear import linear
    from solo_semppl.eval.results import write_result

    run = load_run(run_dir)
    near = knn(run, ks=(1, 3), temperatures=(0.1,))
    assert near["num_labelled"] == 15 and 0 <= near["top1"] <= 100
    probe = linear(run, epochs=30, lr_grid=(0.1,))
    assert probe["top1"] > 60  # the classes differ in brightness: a linear probe separates them
    path = write_result(run, "knn", near)
    assert json.loads(path.read_text())["split_sha256"] == run.split.sha256()


def test_validation_classes_must_match(run_dir, tmp_path):
    from solo_semppl.eval.finetune import finetune

    (tmp_path / "val" / "c2").rename(tmp_path / "val" / "zz")
    with pytest.raises(ValueError, match="validation classes"):
        finetune(load_run(run_dir), epochs=1)


def test_ood_variants_and_logit_restriction(run_dir, tmp_path):
    from solo_semppl.eval.finetune import finetune
    from solo_semppl.eval.ood import ood, training_indices

    run = load_run(run_dir)
    model = tmp_path / "ft.pt"
    finetune(run, epochs=1, lr_grid=(0.1,), save_to=model)
    root = tmp_path / "ood"
    images(root / "imagenet-a", only=[0, 2])  # 2 of the 3 classes: logits restricted to them
    images(root / "imagenet-r", only=[1])
    images(root / "imagenet-c" / "blur" / "1", classes=3)
    images(root / "imagenet-c" / "blur" / "2", classes=3)
    result = ood(load_run(run_dir), model, root)
    assert set(result) == {"imagenet-a", "imagenet-r", "imagenet-c"}
    assert set(result["imagenet-c"]["per_corruption"]) == {"blur/1", "blur/2"}
    assert training_indices(["c1", "c2"], ["c0", "c1", "c2"], root) == [1, 2]
    assert training_indices(["2", "0"], ["n01", "n02", "n03"], root) == [2, 0]  # V2 names classes by index
    with pytest.raises(ValueError, match="not among the training classes"):
        training_indices(["zz"], ["c0"], root)


def test_restricted_logits_pick_among_the_variant_classes():
    from solo_semppl.eval.ood import Restricted

    model = torch.nn.Identity()
    logits = torch.tensor([[5.0, 1.0, 3.0, 0.0]])
    restricted = Restricted(model, [1, 2])
    assert restricted(logits).tolist() == [[1.0, 3.0]] and restricted(logits).argmax(1).item() == 1
