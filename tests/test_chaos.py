"""``datacenter chaos``: real work under random faults keeps every invariant.

The seeds below each exposed a real bug once (a committed relocation that
did not switch the storage, a stale cross-device temporary, a job filed
before its source had arrived, an intent missing from the new root).
"""

from __future__ import annotations

import json

import pytest

from datacenter.cli.main import main
from datacenter.testing.chaos import ChaosRun

REGRESSIONS = [(5, 0.1), (13, 0.1), (45, 0.1), (93, 0.1), (99, 0.1), (2, 0.1), (56, 0.1)]


@pytest.mark.parametrize(("seed", "probability"),
                         REGRESSIONS + [(s, 0.3) for s in range(1, 6)])
def test_invariants_hold_under_faults(seed: int, probability: float) -> None:
    report = ChaosRun(seed, 25, probability).run()
    assert report["stats"]["faults_triggered"] > 0
    assert report["service_kills"] >= 1
    assert report["left_for_the_final_check"] == 0  # the restarted service took them all
    assert report["invariants"] == {"files_lost": 0, "rows_lost": 0, "rows_duplicated": 0,
                                    "half_applied_groups": 0}


def test_same_seed_same_faults() -> None:
    first = ChaosRun(7, 10, 0.2, service=False).run()
    second = ChaosRun(7, 10, 0.2, service=False).run()
    assert first["stats"] == second["stats"]
    assert [r["result"].split(" ->")[0] for r in first["results_sample"]] == \
           [r["result"].split(" ->")[0] for r in second["results_sample"]]


def test_command_prints_the_seed_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--seed", "3", "--files", "5", "--probability", "0.2",
                 "--report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"stats", "invariants", "results_sample", "corruption_demo"}
    demo = report["corruption_demo"]
    assert demo["original"].keys() == demo["corrupted"].keys()
    assert demo["original"] != demo["corrupted"]


def test_command_summary_and_bad_probability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--files", "3"]) == 0
    assert "every invariant holds" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["chaos", "--probability", "1.5"])
    assert exit_info.value.code == 2
