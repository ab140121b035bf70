"""The solo-learn binding: registration, option validation, leak-proof semi-supervision,
equivalences between switches, checkpoints (needs solo-learn)."""

import math

import pytest
import torch

from conftest import needs_solo
from solo_fixtures import build, dataset_of

pytestmark = needs_solo


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from solo_fixtures import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("tiny"))


def test_register_is_in_place_and_idempotent():
    import solo.methods

    from solo_semppl import register
    from solo_semppl.methods import ReLIC, SemPPL

    table = solo.methods.METHODS
    register()
    register()
    assert solo.methods.METHODS is table
    assert table["semppl"] is SemPPL and table["relic"] is ReLIC
    assert "byol" in table and "simclr" in table


def test_unknown_method_kwarg_names_the_key_and_lists_valid_ones(folder):
    with pytest.raises(ValueError, match=r"method_kwargs\.knn_kk.*knn_k"):
        build("semppl", folder, ["+method_kwargs.knn_kk=3"])


SUNCET = ["semi_supervised.labelled_per_batch=3"]
PAWS = ["semi_supervised.labelled_per_batch=3", "semi_supervised.balanced_labelled=true"]


@pytest.mark.parametrize("method, extra, override, message", [
    ("semppl", [], "++method_kwargs.knn_k=0", r"method_kwargs\.knn_k = 0: expected an integer >= 1"),
    ("semppl", [], "++method_kwargs.kl_form=k3", r"method_kwargs\.kl_form = 'k3'"),
    ("semppl", [], "++method_kwargs.temperature=0", r"method_kwargs\.temperature"),
    ("semppl", [], "++method_kwargs.pseudo_label_noise=1.5", r"pseudo_label_noise = 1.5"),
    ("semppl", [], "+semi_supervised.fractoin=0.1", r"semi_supervised\.fractoin"),
    ("semppl", [], "semi_supervised.fraction=null", r"semppl needs a labelled split"),
    ("semppl", [], "+semi_supervised.per_class=2", r"exactly one of"),
    ("semppl", [], "method_kwargs.num_negatives=8", r"num_negatives = 8: expected at most the global batch size - 1 = 7"),
    ("semppl", [], "++method_kwargs.queue_size=4", r"queue capacity 4 is smaller than one global batch \(8\)"),
    ("semppl", [], "++method_kwargs.proj_layers=4", r"method_kwargs\.proj_layers = 4: expected 2 or 3"),
    ("suncet", SUNCET, "method_kwargs.supervised_temperature=0", r"method_kwargs\.supervised_temperature = 0"),
    ("suncet", SUNCET, "semi_supervised.labelled_per_batch=0", r"semi_supervised\.labelled_per_batch = 0: suncet needs labelled images in every batch"),
    ("suncet", SUNCET, "semi_supervised.fraction=null", r"suncet needs a labelled split"),
    ("paws", PAWS, "method_kwargs.sharpen_temperature=0", r"method_kwargs\.sharpen_temperature = 0: expected a number > 0"),
    ("paws", PAWS, "method_kwargs.label_smoothing=2", r"method_kwargs\.label_smoothing = 2"),
    ("paws", PAWS, "semi_supervised.labelled_per_batch=0", r"semi_supervised\.labelled_per_batch = 0: paws needs labelled images in every batch"),
    ("paws", PAWS, "semi_supervised.fraction=null", r"paws needs a labelled split"),
    ("paws", PAWS, "semi_supervised.labelled_per_batch=7", r"semi_supervised\.labelled_per_batch = 7: larger than the labelled set"),
])
def test_bad_config_is_rejected_before_training(folder, method, extra, override, message):
    with pytest.raises(ValueError, match=message):
        build(method, folder, [*extra, override])


def test_proj_layers_3_is_simclrv2s_deeper_head_for_online_and_target(folder):
    two, three = build("relic", folder), build("relic", folder, ["++method_kwargs.proj_layers=3"])
    for model, norms in ((two, 1), (three, 2)):
        for head in (model.projector, model.momentum_projector):
            assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in head) == norms
        assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.predictor) == 1


def test_fewer_than_two_large_crops_is_rejected(folder):
    with pytest.raises(ValueError, match="at least 2 large crops"):
        build("relic", folder, ["augmentations.0.num_crops=1"])


def test_split_is_a_buffer_recorded_in_the_config(folder):
    model = build("semppl", folder)
    mask = model.labelled_mask
    assert mask.dtype == torch.bool and mask.numel() == 24 and int(mask.sum()) == 6
    assert "labelled_mask" in model.state_dict()
    semi = model.cfg.semi_supervised
    assert semi.num_labelled == 6 and semi.num_samples == 24 and len(semi.sha256) == 64


def test_changed_split_is_detected_through_recorded_sha(folder):
    with pytest.raises(ValueError, match="sha256"):
        build("semppl", folder, ["+semi_supervised.sha256=" + "0" * 64])


def test_unlabelled_targets_are_hidden_from_the_base_step(folder):
    model = build("semppl", folder)
    indexes = torch.arange(24)
    targets = torch.tensor(dataset_of(model).targets)
    visible = model.visible_targets(indexes, targets)
    assert torch.equal(visible[model.labelled_mask], targets[model.labelled_mask])
    assert (visible[~model.labelled_mask] == -1).all()


SEMI_SUPERVISED = {"semppl": [], "suncet": ["semi_supervised.labelled_per_batch=3"],
                   "paws": ["semi_supervised.labelled_per_batch=3", "semi_supervised.balanced_labelled=true"]}


@pytest.mark.parametrize("method", SEMI_SUPERVISED)
def test_no_leak_permuting_hidden_labels_changes_nothing(folder, method):
    """Training never reads an unlabelled image's label: permuting those labels gives identical
    losses and weights after several seeded steps (telemetry aside)."""
    from solo_fixtures import fit

    runs = []
    for permute in (False, True):
        model = build(method, folder, SEMI_SUPERVISED[method])
        data = dataset_of(model)
        if permute:
            hidden = [i for i in range(len(data)) if not model.labelled_mask[i]]
            labels = [data.targets[i] for i in hidden]
            labels = labels[1:] + labels[:1]
            for i, label in zip(hidden, labels):
                data.targets[i] = label
        losses = fit(model, data, steps=4, labelled_share=method != "semppl")
        runs.append((losses, model.state_dict()))
    (loss_a, state_a), (loss_b, state_b) = runs
    assert loss_a == loss_b
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_batch_without_labelled_images_gives_no_nan(folder):
    from solo_fixtures import CropsDataset, fit

    model = build("semppl", folder, ["semi_supervised.fraction=null", "+semi_supervised.per_class=1"])
    unlabelled = [i for i in range(24) if not model.labelled_mask[i]]
    data = CropsDataset(dataset_of(model).targets)
    subset = torch.utils.data.Subset(data, unlabelled)
    losses = fit(model, subset, steps=3)
    assert all(torch.isfinite(torch.tensor(losses)))
    logged = model.trainer.callback_metrics
    assert logged and all(torch.isfinite(v).all() for v in logged.values()), logged


@pytest.mark.slow
def test_semppl_without_semantic_positives_equals_relic(folder):
    from solo_fixtures import fit

    relic = build("relic", folder)
    semppl = build("semppl", folder, ["method_kwargs.num_semantic_positives=0", "++method_kwargs.pseudo_labels=false"])
    semppl.load_state_dict(relic.state_dict(), strict=False)
    losses_relic = fit(relic, dataset_of(relic), steps=3)
    losses_semppl = fit(semppl, dataset_of(semppl), steps=3)
    assert losses_relic == pytest.approx(losses_semppl, rel=1e-6)


def test_semantic_positives_change_the_loss(folder):
    from solo_fixtures import fit

    base = build("semppl", folder, ["method_kwargs.num_semantic_positives=0"])
    with_sempos = build("semppl", folder)
    with_sempos.load_state_dict(base.state_dict())
    losses_base = fit(base, dataset_of(base), steps=4)
    losses_sempos = fit(with_sempos, dataset_of(with_sempos), steps=4)
    assert losses_base[0] == pytest.approx(losses_sempos[0])  # queue empty at step 0
    assert losses_base[1:] != pytest.approx(losses_sempos[1:])
    assert int(with_sempos.queue.valid.sum()) > 0


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_outputs(folder, tmp_path):
    from solo_fixtures import fit

    model = build("semppl", folder)
    fit(model, dataset_of(model), steps=3)
    path = tmp_path / "model.ckpt"
    model.trainer.save_checkpoint(path)
    fresh = build("semppl", folder)
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    fresh.load_state_dict(state, strict=True)
    model.eval(), fresh.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for key in ("feats", "z", "p"):
            assert torch.equal(model(x)[key], fresh(x)[key]), key
    assert torch.equal(model.queue.embeddings, fresh.queue.embeddings)
    assert torch.equal(model.queue.labels, fresh.queue.labels)
    assert int(model.queue.ptr) == int(fresh.queue.ptr) and int(model.queue.ptr) > 0


@pytest.mark.parametrize(
    "switch",
    [
        "++method_kwargs.knn_k=3", "++method_kwargs.knn_votes=same_view", "++method_kwargs.pseudo_labels=false",
        "++method_kwargs.oracle_labels=true", "++method_kwargs.pseudo_label_noise=0.5", "++method_kwargs.exclude_self=true",
        "++method_kwargs.pseudo_label_features=target", "method_kwargs.invariance_weight=0",
        "++method_kwargs.kl_form=k2", "++method_kwargs.base_loss=simclr", "++method_kwargs.base_loss=byol",
        "++method_kwargs.sempos_start_epoch=1", "method_kwargs.num_semantic_positives=1",
        "++method_kwargs.queue_dtype=bfloat16",
    ],
)
@pytest.mark.slow
def test_every_switch_changes_training(folder, switch):
    """Same weights, data and seed; only the switch differs: the losses after the first steps
    (the queue is empty at step 0) must differ from the default's."""
    from solo_fixtures import fit

    default = build("semppl", folder, ["semi_supervised.fraction=0.5"])
    switched = build("semppl", folder, ["semi_supervised.fraction=0.5", switch])
    switched.load_state_dict(default.state_dict())
    losses_default = fit(default, dataset_of(default), steps=4)
    losses_switched = fit(switched, dataset_of(switched), steps=4)
    assert losses_default[1:] != pytest.approx(losses_switched[1:], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("switch_off", ["method_kwargs.supervised_weight=0", "++method_kwargs.supervised_epochs=0"])
def test_suncet_without_its_term_is_solo_learns_simclr(folder, switch_off):
    """Its term switched off, every label visible: the same losses as solo-learn's simclr step by
    step (same weights, crops and order), so the SimCLR part is SimCLR's."""
    from solo_fixtures import fit

    full = ["semi_supervised.fraction=1.0", "method_kwargs.temperature=0.2"]
    simclr = build("simclr", folder, full)
    suncet = build("suncet", folder, [*full, "semi_supervised.labelled_per_batch=3", switch_off])
    suncet.load_state_dict(simclr.state_dict(), strict=False)
    assert fit(suncet, dataset_of(suncet), steps=3) == pytest.approx(fit(simclr, dataset_of(simclr), steps=3), rel=1e-5)


def test_suncet_term_reads_the_labelled_images_labels(folder):
    from solo_fixtures import fit

    losses = []
    for shift in (0, 1):
        model = build("suncet", folder, ["semi_supervised.labelled_per_batch=3"])
        data = dataset_of(model)
        for i in model.labelled_mask.nonzero().flatten().tolist():
            data.targets[i] = (data.targets[i] + shift * (i % 2)) % 3
        losses.append(fit(model, data, steps=3))
    assert losses[0] != pytest.approx(losses[1], rel=1e-7)


def test_paws_trains_on_the_labelled_support_and_every_switch_changes_it(folder):
    """The support labels drive the loss (shifting the labelled images' labels changes it), and
    each PAWS switch changes training from the same weights and batches."""
    from solo_fixtures import fit

    def losses(extra=(), shift=0):
        model = build("paws", folder, [*PAWS, *extra])
        data = dataset_of(model)
        for i in model.labelled_mask.nonzero().flatten().tolist():
            data.targets[i] = (data.targets[i] + shift) % 3
        return fit(model, data, steps=3, labelled_share=True)

    default = losses()
    assert all(math.isfinite(v) for v in default)
    assert losses(shift=1) != pytest.approx(default, rel=1e-7)
    for switch in ("method_kwargs.me_max=false", "method_kwargs.label_smoothing=0", "method_kwargs.sharpen_temperature=0.5",
                   "method_kwargs.temperature=0.3"):
        assert losses([switch]) != pytest.approx(default, rel=1e-7), switch
