"""The commands that write the shipped results of chapters 3 and 4 (assets/precomputed/): clear refusals."""

from __future__ import annotations

from engine.__main__ import main
from engine.alignment import shipped
from engine.commands import alignment


def test_align_precompute_refuses_an_unknown_section(capsys):
    assert main(["align-precompute", "--only", "sft,ppo"]) == 2
    assert "error: --only" in capsys.readouterr().err


def test_hf_train_ships_only_the_default_run(capsys):
    # checked before training: a shipped result stands for what the page's default click gives
    assert main(["hf-train", "--epochs", "1", "--save-precomputed"]) == 2
    assert "default run only" in capsys.readouterr().err


def test_help_lists_the_precompute_command(capsys):
    try:
        main(["align-precompute", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--only" in out and "sft, reward, race, hacking, beta" in out


def test_the_command_knows_every_shipped_section():
    assert alignment.SECTIONS == shipped.SECTIONS  # the CLI's help does not import the engine area
