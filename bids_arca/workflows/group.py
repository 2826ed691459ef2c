"""The group level: analyses across participants."""

from __future__ import annotations

from argparse import Namespace

from bids_arca.errors import UsageError


def run_group(opts: Namespace) -> None:
    raise UsageError(
        'group level: no group analysis is available in this version (evaluation, training and '
        'longitudinal follow-up are planned)'
    )
