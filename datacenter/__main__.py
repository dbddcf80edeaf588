"""``python -m datacenter`` is the ``datacenter`` command."""

import sys

from datacenter.cli import main

sys.exit(main())
