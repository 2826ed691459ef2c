"""The participant level: one independent run per session."""

from __future__ import annotations

import logging
from argparse import Namespace

from bids_arca.errors import BidsArcaError, MissingInputError
from bids_arca.inputs import SessionInputs, collect_sessions, load_layout

LOGGER = logging.getLogger(__name__)


def run_participant(opts: Namespace) -> list[SessionInputs]:
    """Check every selected session and return those ready for segmentation.

    A session that lacks a role is reported by name and fails the run (exit 66) after the other
    sessions were handled, so that one incomplete exam does not hold back the rest.
    """
    layout = load_layout(opts.bids_dir, validate=not opts.skip_bids_validation)
    sessions = collect_sessions(layout, opts.participant_label, opts.session_label)
    ready, failures = [], []
    for session in sessions:
        if session.missing:
            failures.append(
                MissingInputError(
                    f'{opts.bids_dir / session.name.replace("_", "/")}: missing '
                    f'{", ".join(session.missing)} (needs T1w, ce-T1w, T2w and FLAIR)'
                )
            )
            LOGGER.error('%s', failures[-1])
            continue
        LOGGER.info(
            '%s: inputs %s',
            session.name,
            ', '.join(f'{r}={p.name}' for r, p in session.images.items()),
        )
        ready.append(session)
    LOGGER.info('%d of %d session(s) ready', len(ready), len(sessions))
    if failures:
        raise _summary(failures)
    return ready


def _summary(failures: list[BidsArcaError]) -> BidsArcaError:
    first = failures[0]
    if len(failures) == 1:
        return first
    error = type(first)(f'{first} (and {len(failures) - 1} more session(s) failed, see above)')
    return error
