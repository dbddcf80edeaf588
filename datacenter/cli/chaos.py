"""``datacenter chaos``: the fault harness's proof run, from the command line."""

from __future__ import annotations

import argparse
import json

from datacenter.cli.registry import command
from datacenter.storage import fs
from datacenter.testing import ChaosRun


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=42,
                        help="the same seed replays the same run")
    parser.add_argument("--files", type=_positive, default=20, metavar="N",
                        help="files per phase: N imported by hand, then N more dropped while "
                             "the service runs, 2N in all (default 20)")
    parser.add_argument("--probability", type=_probability, default=0.05, metavar="P",
                        help="chance that a filesystem step fails (default 0.05)")
    parser.add_argument("--report", action="store_true", help="print the full JSON report")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away folder")
    parser.add_argument("--no-service", dest="service", action="store_false",
                        help="skip the phase where the watch service is killed and restarted")


def _files(files: dict[str, int]) -> str:
    """How many files, and in which phase: ``--files 20`` drops 20 + 20."""
    if not files["through_the_service"]:
        return f"{files['dropped']} files (imported by hand; no service phase)"
    return (f"{files['dropped']} files ({files['by_hand']} imported by hand + "
            f"{files['through_the_service']} dropped while the service ran)")


@command("chaos", "run real work under random faults and check nothing broke", _options)
def run(args: argparse.Namespace) -> int:
    chaos = ChaosRun(args.seed, args.files, args.probability, service=args.service)
    try:
        report = chaos.run()
    finally:
        if not args.keep:
            fs.rmtree(chaos.work)
    held = all(value == 0 for value in report["invariants"].values())
    if args.report:
        print(json.dumps(report, indent=2, default=str))
    else:
        stats = report["stats"]
        print(f"chaos: seed {args.seed}, {_files(report['files'])}, "
              f"{stats['calls_intercepted']} filesystem steps, {stats['faults_triggered']} "
              f"faults injected, service killed {chaos.kills} times")
        for name, value in report["invariants"].items():
            print(f"  {name:<20} {value}")
        print("every invariant holds" if held else "INVARIANTS BROKEN")
        if args.keep:
            print(f"  folder kept: {chaos.work}")
    return 0 if held else 1
