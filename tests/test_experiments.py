"""compare / ablate plumbing: label settings, resumable runs, tables (no training here)."""
import json

import pytest

from solo_semppl.experiments.ablate import SWEEPS
from solo_semppl.experiments.compare import label_setting, markdown_table, summarise, write_tables
from solo_semppl.experiments.runs import cached_run


def test_label_settings():
    assert label_setting("10%") == ("10%", ["semi_supervised.fraction=0.1"])
    assert label_setting("2pc")[1][-1] == "+semi_supervised.per_class=2"
    with pytest.raises(ValueError, match="label setting"):
        label_setting("ten")


def test_finished_runs_are_not_redone(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"method": "semppl", "finetune_top1": 90.0}))

    def never(_):
        raise AssertionError("evaluated again")

    assert cached_run(tmp_path, tmp_path, "semppl", [], never)["finetune_top1"] == 90.0


def test_summary_and_tables(tmp_path):
    rows = [{"labels": "10%", "method": m, "seed": s, "finetune_top1": v, "knn_top1": v - 1, "pl_accuracy": None}
            for m, vals in (("a", (90.0, 92.0)), ("b", (80.0, 80.0))) for s, v in enumerate(vals)]
    summary = {e["method"]: e for e in summarise(rows)}
    assert summary["a"]["finetune_top1"] == 91.0 and summary["a"]["finetune_top1_std"] == pytest.approx(2 ** 0.5)
    assert summary["b"]["finetune_top1_std"] == 0.0 and summary["a"]["pl_accuracy"] is None
    table = write_tables(rows, tmp_path)
    assert "| 10% | a | 2 | 91.0 ± 1.4 | 90.0 ± 1.4 | - |" in table
    assert (tmp_path / "results.csv").read_text().count("\n") == 5
    assert markdown_table(summarise(rows)).startswith("| labels |")


def test_every_ablation_of_the_issue_is_swept():
    assert set(SWEEPS) == {"semantic_positives", "knn_k", "queue_capacity", "pseudo_labels", "votes", "noise",
                           "oracle", "base_loss", "invariance"}
    assert list(SWEEPS["semantic_positives"]) == ["0", "1", "3", "5"]
    assert len(SWEEPS["base_loss"]) == 6


@pytest.mark.parametrize("switch", sorted(SWEEPS))
def test_every_sweep_override_composes_with_the_digits_config(switch):
    from solo_semppl.cli.configs import CONFIG_DIR
    from solo_semppl.experiments.runs import compose

    for overrides in SWEEPS[switch].values():
        cfg = compose(CONFIG_DIR / "pretrain" / "digits", "semppl", overrides)
        for override in overrides:
            key, value = override.lstrip("+").split("=")
            assert str(cfg.method_kwargs[key.split(".", 1)[1]]).lower() == value.lower()


def test_overrides_may_follow_list_options():
    from solo_semppl.experiments import ablate, compare, demo

    args = compare.parse_with_overrides(compare.parser(), ["--seeds", "0", "1", "max_epochs=12", "--labels", "1%", "+a.b=2"])
    assert args.seeds == [0, 1] and args.labels == ["1%"] and args.overrides == ["max_epochs=12", "+a.b=2"]
    args = compare.parse_with_overrides(ablate.parser(), ["--switches", "noise", "oracle", "max_epochs=3"])
    assert args.switches == ["noise", "oracle"] and args.overrides == ["max_epochs=3"]
    args = compare.parse_with_overrides(demo.parser(), ["--seeds", "4", "~backbone.kwargs"])
    assert args.seeds == [4] and args.overrides == ["~backbone.kwargs"]


def test_ablation_folders_are_valid_in_hydra_overrides():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from solo_semppl.experiments.ablate import safe

    parser = OverridesParser.create()
    for switch, values in SWEEPS.items():
        for value in values:
            parser.parse_overrides([f"checkpoint.dir=/tmp/10pct/{switch}/{safe(value)}/seed0"])
