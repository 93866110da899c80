"""``python -m pas_bayes`` is the ``pas-bayes`` command."""

import sys

from pas_bayes.cli import main

sys.exit(main())
