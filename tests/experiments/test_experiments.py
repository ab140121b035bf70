"""compare / ablate plumbing: label settings, resumable runs, tables (no training here)."""
import json

import pytest
from conftest import needs_solo

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
    # columns: fine-tune, linear, kNN, labeller, pseudo-label accuracy
    assert "| 10% | a | 2 | 91.0 ± 1.4 | - | 90.0 ± 1.4 | - | - |" in table
    with_floor = write_tables(rows, tmp_path, floors={"10%": 62.5})
    assert with_floor.endswith("| 10% | raw pixels (logistic regression) | - | - | 62.5 | - | - | - |\n")
    assert (tmp_path / "results.csv").read_text().count("\n") == 5
    assert markdown_table(summarise(rows)).startswith("| labels |")


def test_every_ablation_of_the_issue_is_swept():
    assert set(SWEEPS) == {"semantic_positives", "knn_k", "queue_capacity", "pseudo_labels", "votes", "noise",
                           "oracle", "base_loss", "invariance", "sempos_weight"}
    assert [v for v in SWEEPS["invariance"] if v != "default"] == [f"lambda={w}" for w in (0, 0.1, 0.3, 1, 3, 5)]
    assert [v for v in SWEEPS["sempos_weight"] if v != "default"] == [f"alpha={a}" for a in (0.1, 0.2, 0.5, 1)]
    assert list(SWEEPS["semantic_positives"]) == ["0", "1", "3", "5"]
    assert len(SWEEPS["base_loss"]) == 6


@pytest.mark.parametrize("switch", sorted(SWEEPS))
def test_every_sweep_override_composes_with_the_digits_config(switch):
    from solo_semppl.training.configs import CONFIG_DIR
    from solo_semppl.training.configs import compose

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


@needs_solo
@pytest.mark.slow
def test_ablation_settings_that_resolve_alike_are_one_run():
    from solo_semppl.experiments.ablate import plan, safe
    from solo_semppl.experiments.compare import config_dir_of

    cells = plan(config_dir_of("digits"), list(SWEEPS), ["10%", "1%"], [0, 1], [])
    assert len(cells) == 2 * 2 * sum(len(values) for values in SWEEPS.values())
    dir_of = {(c["labels"], c["switch"], c["value"], c["seed"]): c["dir"] for c in cells}
    runs = {d.split("/")[2] for d in dir_of.values()}
    assert runs == {safe(name) for name in (
        "default", "num_semantic_positives=0", "num_semantic_positives=1", "num_semantic_positives=5",
        "knn_k=3", "knn_k=5", "queue_cap_to_labelled=False", *(f"queue_batches={m},queue_cap_to_labelled=False" for m in (5, 10, 40)),
        "pseudo_labels=False", "knn_votes=same_view", "pseudo_label_noise=0.2", "pseudo_label_noise=0.5",
        "oracle_labels=True", "base_loss=simclr", "base_loss=byol", "base_loss=simclr,num_semantic_positives=0",
        "base_loss=byol,num_semantic_positives=0", "invariance_weight=0",
        *(f"invariance_weight={w}" for w in (0.1, 1, 3, 5)),  # 0.3 is the digits default
        *(f"sempos_weight={a}" for a in (0.1, 0.5, 1)),  # 0.2 is the default
    )}
    assert dir_of["10%", "invariance", "lambda=0.3", 0] == dir_of["10%", "invariance", "default", 0]
    assert len(set(dir_of.values())) == 2 * 2 * len(runs)
    assert dir_of["10%", "base_loss", "relic+sempos", 1] == dir_of["10%", "semantic_positives", "3", 1] == "10pct/runs/default/seed1"
    assert dir_of["1%", "base_loss", "relic", 0] == dir_of["1%", "semantic_positives", "0", 0]
    assert dir_of["1%", "noise", "0%", 0] == "1pct/runs/default/seed0" != dir_of["10%", "noise", "0%", 0]


def test_grid_trains_a_shared_folder_once(tmp_path, monkeypatch):
    from solo_semppl.experiments import compare

    calls = []
    monkeypatch.setattr(compare, "cached_run", lambda out, *a, **k: calls.append(out) or {"finetune_top1": len(calls)})
    cells = [{"labels": "10%", "method": "semppl", "seed": 0, "value": v, "dir": d, "overrides": []}
             for v, d in (("a", "x"), ("b", "y"), ("c", "x"))]
    rows = compare.run_grid(cells, tmp_path, tmp_path, None)
    assert calls == [tmp_path / "x", tmp_path / "y"]
    assert [(r["value"], r["finetune_top1"]) for r in rows] == [("a", 1), ("b", 2), ("c", 1)]


def test_distil_cells_reuse_the_run_and_show_the_student(tmp_path, monkeypatch):
    from solo_semppl.experiments import compare

    trained, distilled = [], []
    monkeypatch.setattr(compare, "cached_run", lambda out, *a, **k: trained.append(out) or {
        "run_dir": str(out), "finetune_top1": 80.0, "linear_top1": 70.0, "knn_top1": 75.0, "labeller_top1": 85.0})
    monkeypatch.setattr(compare, "distil_task", lambda task, results, log=None: distilled.append(task["dir"]) or {
        "distil_top1": 90.0, "distil_knn_top1": 77.0, "distil_agreement": 95.0, "teacher_top1": 80.0})
    cells = [{"labels": "1%", "method": "simclr", "seed": 0, "dir": "1pct/simclr/seed0", "overrides": [], "distil": d}
             for d in (False, True)]
    plain, student = compare.run_grid(cells, tmp_path, tmp_path, None)
    assert trained == [tmp_path / "1pct/simclr/seed0"] and distilled == ["1pct/simclr/seed0"]
    assert plain["method"] == "simclr" and plain["finetune_top1"] == 80.0 and "distil_top1" not in plain
    assert student["method"] == "simclr + distil" and student["finetune_top1"] == 90.0 and student["knn_top1"] == 77.0
    assert "linear_top1" not in student and "labeller_top1" not in student
    assert "simclr + distil" in compare.markdown_table(compare.summarise([plain, student]))


@pytest.mark.slow
def test_grid_workers_give_the_sequential_rows(tmp_path):
    from solo_semppl.experiments.compare import run_grid

    cells = [{"labels": "1%", "method": "relic", "seed": s, "dir": f"r/seed{s}", "overrides": []} for s in range(3)]
    for s in range(3):
        (tmp_path / f"r/seed{s}").mkdir(parents=True)
        (tmp_path / f"r/seed{s}/result.json").write_text(json.dumps({"knn_top1": 10.0 * s}))
    assert run_grid(cells, tmp_path, tmp_path, None, jobs=2) == run_grid(cells, tmp_path, tmp_path, None, jobs=1)
    assert [r["knn_top1"] for r in run_grid(cells, tmp_path, tmp_path, None, jobs=2)] == [0.0, 10.0, 20.0]


def test_verdict_rule_against_hand_computed_cases():
    from solo_semppl.experiments.verdicts import verdict

    # means 91 vs 90; stdevs 1.0 and 0.5 -> effect 1.0 is not > spread 1.0: inconclusive
    assert verdict([90.0, 91.0, 92.0], [89.5, 90.0, 90.5]) == (1.0, 1.0, "inconclusive")
    effect, spread, word = verdict([93.0, 93.2, 93.4], [90.0, 90.1, 90.2])
    assert word == "reproduced" and abs(effect - 3.1) < 1e-9 and abs(spread - 0.2) < 1e-9
    assert verdict([80.0, 80.1], [90.0, 90.1])[2] == "not reproduced"
    assert verdict([91.0], [90.0]) == (1.0, 0.0, "reproduced")  # one seed: no spread known


def test_verdict_table_pairs_settings_across_switches():
    from solo_semppl.experiments.verdicts import CLAIMS, verdict_table

    settings = {setting for _, better, worse in CLAIMS for setting in (better, worse)}
    assert all(value in SWEEPS[switch] for switch, value in settings)  # every claim names a swept setting
    rows = [{"labels": "10%", "switch": "noise", "value": "20%", "seed": s, "finetune_top1": 90.0 + s, "knn_top1": None}
            for s in range(3)]
    assert verdict_table(rows).count("\n") == 2  # its partner (0 semantic positives) is missing: no row
    rows += [{"labels": "10%", "switch": "semantic_positives", "value": "0", "seed": s, "finetune_top1": 80.0,
              "knn_top1": 70.0} for s in range(3)]
    table = verdict_table(rows)
    assert "| robust to noise (20 % noise vs no semantic positives) | 10% | fine-tune | +11.0 | 1.0 | reproduced |" in table
    assert "kNN" not in table


def test_the_learning_curve_trains_each_budget_as_its_own_run(tmp_path, monkeypatch):
    from solo_semppl.experiments import compare, curve

    calls = []
    monkeypatch.setattr(compare, "cached_run", lambda out, config_dir, method, overrides, evaluate, **k: calls.append(
        (out, overrides)) or {"finetune_top1": float(len(calls)), "labeller_top1": 50.0 + len(calls)})
    report = curve.curve(tmp_path, tmp_path / "out", ["10%"], ["semppl", "relic"], [10, 25], [0, 1], ["x=1"], None)
    assert len(calls) == 8 and len({out for out, _ in calls}) == 8
    assert calls[0] == (tmp_path / "out/10pct/semppl/ep10/seed0", ["x=1", "semi_supervised.fraction=0.1", "max_epochs=10", "seed=0"])
    assert "| 10% | semppl, 25 epochs | 2 |" in report and (tmp_path / "out" / "curve.png").stat().st_size > 0
