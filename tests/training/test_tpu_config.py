"""``scripts/pretrain/imagenet/semppl_tpu.yaml``: the ImageNet SemPPL config plus the XLA
settings and nothing else, accepted by solo-learn's ``parse_cfg`` for 8 TPU devices."""

import pytest
from omegaconf import OmegaConf

from conftest import REPO, needs_solo
from solo_semppl.training.configs import compose

IMAGENET = REPO / "scripts" / "pretrain" / "imagenet"
TPU_SETTINGS = {
    "name": "semppl-imagenet-tpu", "accelerator": "tpu", "devices": 8, "strategy": "auto",
    "sync_batchnorm": False, "precision": "bf16-true", "knn_eval.enabled": False,
    "method_kwargs.knn_backend": "torch", "method_kwargs.queue_dtype": "float32", "method_kwargs.max_nonfinite_steps": 0,
}


def flat(cfg, prefix=""):
    out = {}
    for key, value in cfg.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_tpu_config_is_the_imagenet_semppl_config_plus_the_xla_settings():
    gpu = flat(OmegaConf.to_container(compose(IMAGENET, "semppl", [])))
    tpu = flat(OmegaConf.to_container(compose(IMAGENET, "semppl_tpu", [])))
    changed = {k for k in gpu.keys() | tpu.keys() if gpu.get(k, "<absent>") != tpu.get(k, "<absent>")}
    assert changed == set(TPU_SETTINGS)
    assert {k: tpu[k] for k in TPU_SETTINGS} == TPU_SETTINGS
    assert tpu["optimizer.name"] == "lars" and tpu["method"] == "semppl"


@needs_solo
def test_solo_learn_parse_cfg_accepts_the_tpu_config(tmp_path):
    from solo.args.pretrain import parse_cfg

    from solo_semppl.training.devices import normalise_devices
    from solo_semppl.methods import METHODS
    from solo_semppl.options import apply_options

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
    cfg = compose(IMAGENET, "semppl_tpu", [f"data.train_path={tmp_path}"])
    assert normalise_devices(cfg) == 8  # the Trainer gets a device count on TPU
    cfg = parse_cfg(cfg)
    apply_options(cfg, "method_kwargs", METHODS["semppl"].OPTIONS)
    assert cfg.optimizer.lr == pytest.approx(0.3 * 128 * 8 / 256)
    assert cfg.optimizer.kwargs.momentum == 0.9 and cfg.optimizer.kwargs.clip_lr
