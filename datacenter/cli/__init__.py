"""The command line: one module per group of sub-commands, one registry, one report.

The CLI only parses and calls the library; nothing outside this folder
imports it.
"""

from datacenter.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
