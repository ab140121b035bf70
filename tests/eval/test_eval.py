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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- the labeller evaluation (projection space) --------------------------------------------------

def byol_mlp(i, h, o):
    return torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.BatchNorm1d(h), torch.nn.ReLU(), torch.nn.Linear(h, o))


def with_heads(run_dir, momentum=True, predictor=True):
    """Gives the run's checkpoint projector / predictor / target tensors (byol-style MLPs)."""
    torch.manual_seed(1)
    state = {k: v for k, v in torch.load(run_dir / "m.ckpt")["state_dict"].items() if k.startswith("backbone.")}
    heads = {"projector": byol_mlp(16, 8, 6)}
    if predictor:
        heads["predictor"] = byol_mlp(6, 8, 6)
    if momentum:
        heads["momentum_projector"] = byol_mlp(16, 8, 6)
        heads["momentum_backbone"] = tiny_cnn(width=4)
    for name, module in heads.items():
        module.eval()
        if name != "momentum_backbone":
            module[1].running_mean.normal_()  # eval-mode batch norm with statistics of its own
        state.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    torch.save({"state_dict": state}, run_dir / "m.ckpt")
    return heads


def test_mlp_from_state_rebuilds_byol_and_simclr_heads():
    from solo_semppl.eval.checkpoint import mlp_from_state

    simclr = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    for original in (byol_mlp(5, 7, 3).eval(), simclr):
        state = {f"projector.{k}": v for k, v in original.state_dict().items()}
        x = torch.randn(4, 5)
        assert torch.allclose(mlp_from_state(state, "projector")(x), original(x), atol=1e-6)


def brute_force_labeller(queries, bank, bank_labels):
    """Every query crop against every bank crop, k = 1, majority, ties by summed similarity."""
    q, b = torch.nn.functional.normalize(queries, dim=-1), torch.nn.functional.normalize(bank, dim=-1)
    predictions = []
    for i in range(q.size(1)):
        counts, sims = {}, {}
        for a in range(q.size(0)):
            for v in range(b.size(0)):
                similarity = [float(q[a, i] @ b[v, j]) for j in range(b.size(1))]
                j = int(np.argmax(similarity))
                label = int(bank_labels[j])
                counts[label] = counts.get(label, 0) + 1
                sims[label] = sims.get(label, 0.0) + similarity[j]
        predictions.append(max(counts, key=lambda c: (counts[c], sims[c])))
    return torch.tensor(predictions)


@pytest.mark.parametrize("momentum,predictor", [(True, True), (False, False)])
def test_labeller_matches_brute_force_votes(run_dir, monkeypatch, momentum, predictor):
    from solo_semppl.eval import labeller as labeller_module

    heads = with_heads(run_dir, momentum, predictor)
    run = load_run(run_dir)
    seen = {}
    original = labeller_module.crop_embeddings

    def spy(network, ds, indices, views, seed, num_workers):
        out = original(network, ds, indices, views, seed, num_workers)
        seen["bank" if indices is not None else "queries"] = out
        seen.setdefault("networks", []).append(network)
        return out

    monkeypatch.setattr(labeller_module, "crop_embeddings", spy)
    result = labeller_module.labeller(run, views=3)
    (bank, bank_labels), (queries, val_labels) = seen["bank"], seen["queries"]
    expected = 100.0 * float((brute_force_labeller(queries, bank, bank_labels) == val_labels).float().mean())
    assert result["top1"] == pytest.approx(expected) and result["views"] == 3 and result["k"] == 1
    target, online = seen["networks"]
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected_online = heads["projector"](run.backbone.eval()(x))
        if predictor:
            expected_online = heads["predictor"](expected_online)
        target_net = heads["momentum_backbone"] if momentum else run.backbone
        target_head = heads["momentum_projector"] if momentum else heads["projector"]
        assert torch.allclose(online(x), expected_online, atol=1e-5)
        assert torch.allclose(target(x), target_head(target_net.eval()(x)), atol=1e-5)


def test_labeller_without_projector_weights_names_the_file_and_keys(run_dir):
    from solo_semppl.eval.labeller import labeller

    state = {k: v for k, v in torch.load(run_dir / "m.ckpt")["state_dict"].items() if k.startswith("backbone.")}
    torch.save({"state_dict": state}, run_dir / "m.ckpt")
    with pytest.raises(ValueError, match=r"m\.ckpt: the labeller evaluation needs the projector weights; missing \['projector\.\*'\]"):
        labeller(load_run(run_dir))


def test_raw_pixel_floor_is_logistic_regression_on_the_labelled_images(run_dir):
    from solo_semppl.eval.raw_pixels import raw_pixel_floor

    floor = raw_pixel_floor(load_run(run_dir), size=4)
    # classes differ by brightness (60 per class, noise 40): raw pixels separate them
    assert floor["num_labelled"] == 15 and floor["top1"] == 100.0


# -- SimCLRv2's protocol: fine-tuning from the projector's first layer, distillation ----------

def test_from_layer_projector1_puts_the_head_on_the_first_projector_block(run_dir):
    from solo_semppl.eval.checkpoint import classifier_model

    heads = with_heads(run_dir)
    run = load_run(run_dir)
    on_backbone, on_projector = classifier_model(run, 3), classifier_model(run, 3, "projector1").eval()
    assert on_backbone[-1].in_features == 16 and on_projector[-1].in_features == 8
    x = torch.randn(2, 3, 16, 16)
    block = heads["projector"][:3]  # Linear, BatchNorm1d (its own statistics), ReLU
    assert torch.allclose(on_projector(x), on_projector[-1](block(run.backbone.eval()(x))), atol=1e-6)
    torch.save({"state_dict": {k: v for k, v in torch.load(run_dir / "m.ckpt")["state_dict"].items()
                               if k.startswith("backbone.")}}, run_dir / "m.ckpt")
    with pytest.raises(ValueError, match=r"m.ckpt.*'projector.0.weight'"):
        classifier_model(load_run(run_dir), 3, "projector1")
    with pytest.raises(ValueError, match="from_layer = 'head'"):
        classifier_model(run, 3, "head")


@pytest.mark.parametrize("from_layer", ["backbone", "projector1"])
def test_a_saved_fine_tuned_model_loads_back_equal(run_dir, tmp_path, from_layer):
    from solo_semppl.eval.checkpoint import classifier_model
    from solo_semppl.eval.finetune import load_model, save_model

    with_heads(run_dir)
    run = load_run(run_dir)
    model = classifier_model(run, 3, from_layer).eval()
    save_model(model, from_layer, tmp_path / "ft.pt")
    loaded, layer = load_model(run, tmp_path / "ft.pt")
    x = torch.randn(2, 3, 16, 16)
    assert layer == from_layer and torch.equal(loaded(x), model(x))
    for bad, message in [(run_dir / "m.ckpt", "not a fine-tuned model"), (tmp_path / "none.pt", "no such file")]:
        with pytest.raises(ValueError, match=message):
            load_model(run, bad)


@pytest.fixture()
def teacher(run_dir, tmp_path):
    from solo_semppl.eval.checkpoint import classifier_model
    from solo_semppl.eval.finetune import save_model

    from solo_semppl.eval import data

    run = load_run(run_dir)
    model = classifier_model(run, 3)
    task = data.labelled_task(run, data.run_transforms(run.args, False))
    feats, labels = data.features(run.backbone, data.loader(task.train, None, 64, False))
    means = torch.stack([feats[labels == c].mean(0) for c in range(3)])
    with torch.no_grad():  # nearest class mean, sharpened: a teacher whose top class varies
        model[-1].weight.copy_(100 * means)
        model[-1].bias.copy_(-50 * (means ** 2).sum(1))
    save_model(model, "backbone", tmp_path / "teacher.pt")
    return tmp_path / "teacher.pt"


def test_distill_never_reads_the_labels_of_unlabelled_images(run_dir, teacher, monkeypatch):
    from solo_semppl.eval import data, distill

    def student_after(permute_hidden):
        original = data.dataset

        def dataset(args, train, transform):
            ds = original(args, train, transform)
            if train and permute_hidden:  # every unlabelled image gets another class's label
                hidden = set(range(len(ds.samples))) - set(load_run(run_dir).split.labelled.tolist())
                ds.samples = [(p, (y + 1) % 3 if i in hidden else y) for i, (p, y) in enumerate(ds.samples)]
                ds.targets = [y for _, y in ds.samples]
            return ds

        monkeypatch.setattr(data, "dataset", dataset)
        out = run_dir / f"student{permute_hidden}.pt"
        result = distill.distill(load_run(run_dir), teacher, epochs=2, batch_size=8, save_to=out)
        return result, torch.load(out)

    (plain, plain_state), (permuted, permuted_state) = student_after(False), student_after(True)
    assert plain["num_images"] == 30 and plain["num_labelled"] == 15
    assert plain["top1"] == permuted["top1"]
    for module in ("backbone", "head"):
        for key, value in plain_state[module].items():
            assert torch.equal(value, permuted_state[module][key]), key


def test_distill_moves_the_student_towards_the_teacher(run_dir, teacher):
    from solo_semppl.eval.distill import distill

    run = load_run(run_dir)
    without = distill(run, teacher, epochs=1, lr=0.0, label_weight=0.0)
    trained = distill(run, teacher, epochs=20, batch_size=8, label_weight=0.0)
    assert without["teacher_top1"] == trained["teacher_top1"] and without["agreement"] < 70
    assert trained["agreement"] > without["agreement"] and trained["agreement"] > 80


def test_distill_refuses_a_teacher_that_is_not_a_fine_tuned_model_of_the_run(run_dir, teacher, tmp_path):
    from solo_semppl.eval.checkpoint import classifier_model
    from solo_semppl.eval.distill import distill
    from solo_semppl.eval.finetune import save_model

    run = load_run(run_dir)
    save_model(classifier_model(run, 4), "backbone", tmp_path / "four.pt")
    for bad, message in [(tmp_path / "four.pt", "four.pt: the teacher predicts 4 classes, the run's training set has 3"),
                         (run_dir / "m.ckpt", "m.ckpt: not a fine-tuned model"),
                         (tmp_path / "missing.pt", "missing.pt: no such file")]:
        with pytest.raises(ValueError, match=message):
            distill(run, bad, epochs=1)
    for kwargs, message in [({"temperature": 0}, "temperature = 0"), ({"label_weight": -1}, "label_weight = -1")]:
        with pytest.raises(ValueError, match=message):
            distill(run, teacher, **kwargs)


def test_distil_run_refits_the_same_teacher_when_the_model_was_not_kept(run_dir, tmp_path):
    """A run evaluated before fine-tuned models were kept: distil_run fits its teacher again from
    the fine-tune record, and the seeded final fit gives the model that was evaluated."""
    from solo_semppl.eval.finetune import finetune
    from solo_semppl.eval.results import write_result
    from solo_semppl.experiments.evaluate import distil_run

    run = load_run(run_dir)
    record = finetune(run, epochs=1, lr_grid=(0.03, 0.1), min_steps=6, save_to=tmp_path / "evaluated.pt")
    write_result(run, "finetune", record)
    metrics = distil_run(run_dir, epochs=1)
    refit, evaluated = torch.load(run_dir / "eval" / "finetune_model.pt"), torch.load(tmp_path / "evaluated.pt")
    for module in ("backbone", "head"):
        for key, value in evaluated[module].items():
            assert torch.equal(value, refit[module][key]), key
    assert metrics["teacher_top1"] == record["top1"] and (run_dir / "eval" / "distill.json").is_file()
    assert distil_run(run_dir, epochs=1) == metrics  # kept: not distilled again


def test_distill_switches_change_the_student(run_dir, teacher):
    from solo_semppl.eval.distill import distill

    def head(**kwargs):
        out = run_dir / "student.pt"
        distill(load_run(run_dir), teacher, epochs=2, batch_size=8, save_to=out, **kwargs)
        return torch.load(out)["head"]["weight"]

    default = head()
    for switch in ({"temperature": 3.0}, {"label_weight": 0.0}, {"lr": 0.01}):
        assert not torch.allclose(head(**switch), default), switch
