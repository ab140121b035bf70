"""README's newcomer commands stay true: CI runs README's test command verbatim."""
import re

from conftest import REPO

ROOT = REPO


def readme_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", quick, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    commands = readme_commands()
    test_command = [c for c in commands if "pytest" in c]
    assert len(test_command) == 1, commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command[0].strip() in [line.strip() for line in ci]


def test_cli_help_lists_every_subcommand(capsys):
    from solo_semppl.cli.main import SUBCOMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)
    assert main(["nope"]) == 2


def test_evaluation_commands_report_bad_input_in_one_line(tmp_path, capsys):
    from solo_semppl.cli.main import ONE_LINE_ERRORS, SUBCOMMANDS, main

    assert set(ONE_LINE_ERRORS) == set(SUBCOMMANDS) - {"pretrain", "zoo", "configs"}
    from solo_semppl.eval.cli import EVALUATIONS

    for evaluation in EVALUATIONS:
        extra = ["--root", str(tmp_path)] if evaluation == "ood" else []
        assert main(["eval", evaluation, "--run", str(tmp_path / "missing"), *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"solo-semppl eval {evaluation}: error: run = '{tmp_path / 'missing'}': expected a .ckpt file or a folder holding one"
    assert main(["eval", "nope"]) == 2 and "expected one of finetune, linear" in capsys.readouterr().err
