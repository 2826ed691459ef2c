"""Decide which DICOM series of one study becomes T1w, T1ce, T2w and FLAIR, and say why.

Series names drift across vendors, sites and years, and Lotan et al. (AJNR 2022) had to keep a
hand-edited name table. Here each series is judged on several independent signals, and every
series ends with a role or a reason; the rules are listed in ``docs/convert.md``:

1. **Skip** what the model cannot use: non-MR objects, localisers, diffusion, perfusion,
   SWI/T2*, phase images, other techniques, derived images and reformats, 4-D series and series
   with too few slices to be a volume.
2. **Weighting** (T1, T2 or FLAIR) from weighted votes: an explicit name (``T1``, ``T2``,
   ``FLAIR``, ``dark-fluid``) counts 3, the physics (TR, TE, TI) 2, a vendor sequence word
   (MPRAGE, BRAVO, TFE, SPACE, CUBE, VISTA...) 1 and the scanner's sequence name 1. T2 and FLAIR
   form one family; within it a long inversion time or a FLAIR name makes FLAIR.
3. **Dimensionality** (3D or 2D) from MRAcquisitionType, else the name, else the geometry.
4. **Contrast state** of each T1: the ContrastBolusAgent tag (when it tells series apart), the
   name (POST, GAD, +C, KM, CE... or PRE, NATIV), then time order: after the first series with
   contrast evidence, or, with no evidence at all, the later of two separate T1 acquisitions.
5. **Choice** per role among the candidates, by the ordered keys of :data:`TIE_BREAKS`.

Steps 1-3 judge each series alone (:mod:`bids_arca.convert.series_signals`, which also lists
the words of series names); steps 4-5 here weigh the series of a study against each other.
Everything is a pure function of :class:`~bids_arca.convert.series.Series` values, so that the
rules are unit-tested on fabricated series (HeuDiConv's own heuristics are tested the same way,
``test_reproin.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from bids_arca.convert.series import Series, seconds_of_day
from bids_arca.convert.series_signals import (
    ASL,
    NO_AGENT,
    PERFUSION,
    POST_NAME,
    PRE_NAME,
    SeriesName,
    dimension,
    skip_reason,
    weighting,
)
from bids_arca.vocabulary import ROLES

# BIDS suffix (with the contrast entity) for each role; acq-2D is added for 2D series.
ROLE_SUFFIX = {'T1w': 'T1w', 'T1ce': 'ce-gadolinium_T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}
ROLE_LABEL = {
    'T1w': 'pre-contrast T1',
    'T1ce': 'post-contrast T1',
    'T2w': 'T2',
    'FLAIR': 'FLAIR',
}


@dataclass(frozen=True)
class Decision:
    """What became of one series: its role and output suffix, or why it was skipped."""

    series: Series
    weighting: str = ''  # T1, T2, FLAIR or '' when skipped before step 2
    dimension: str = ''  # 3D or 2D
    contrast: str = ''  # pre or post, for T1 only
    evidence: tuple[str, ...] = ()
    role: str = ''  # the role this series is a candidate for
    chosen: bool = False
    reason: str = ''

    @property
    def suffix(self) -> str:
        """The BIDS file-name ending, e.g. ``acq-2D_ce-gadolinium_T1w``, for a chosen series."""
        if not self.chosen:
            return ''
        acq = 'acq-2D_' if self.dimension == '2D' else ''
        return acq + ROLE_SUFFIX[self.role]


@dataclass(frozen=True)
class Routing:
    """The decisions for all series of a study, in acquisition order."""

    decisions: tuple[Decision, ...]

    @property
    def chosen(self) -> dict[str, Decision]:
        found = {d.role: d for d in self.decisions if d.chosen}
        return {role: found[role] for role in ROLES if role in found}

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role not in self.chosen)


# ---------------------------------------------------------------------------------------------
# Step 4: contrast state of T1 series


@dataclass(frozen=True)
class _ContrastEvidence:
    """Study-wide facts about the contrast injection."""

    tag_informative: bool  # some MR series carry ContrastBolusAgent and some do not
    first_post: Series | None  # the earliest series with explicit evidence of contrast


def _has_agent(series: Series) -> bool:
    return series.extras.contrast_agent.strip().upper() not in NO_AGENT


def _explicit_post(series: Series, tag_informative: bool) -> str:
    """Evidence that ``series`` was acquired after the injection, or ''."""
    if tag_informative and _has_agent(series):
        return f"ContrastBolusAgent '{series.extras.contrast_agent}'"
    name = SeriesName.of(series)
    if (word := name.find(POST_NAME)) and not name.find(PRE_NAME):
        return f"name '{word}'"
    if name.find(PERFUSION) and not name.find(ASL):
        return 'perfusion (DSC/DCE) injects contrast'
    return ''


def _study_contrast(series: Sequence[Series]) -> _ContrastEvidence:
    """The tag counts on every MR series; names only on routable series and on perfusion (a
    "C" in "C-SPINE" or a localizer's name says nothing about the injection)."""
    mr = [s for s in series if s.extras.modality in ('', 'MR')]
    tagged = [s for s in mr if _has_agent(s)]
    informative = 0 < len(tagged) < len(mr)
    witnesses = [
        s
        for s in mr
        if (informative and _has_agent(s))
        or not skip_reason(s)
        or skip_reason(s).startswith('perfusion')
    ]
    posts = [s for s in witnesses if _explicit_post(s, informative)]
    return _ContrastEvidence(informative, min(posts, key=lambda s: s.order) if posts else None)


def contrast_states(
    t1_series: Sequence[Series], study: _ContrastEvidence
) -> dict[str, tuple[str, str, int]]:
    """Step 4: ``series_id -> (pre|post, evidence, strength)`` for the T1 series of a study.

    Strength ranks the evidence for the tie-break: 2 tag or name, 1 time order, 0 default.
    """
    states: dict[str, tuple[str, str, int]] = {}
    pending: list[Series] = []
    for s in t1_series:
        name = SeriesName.of(s)
        if post := _explicit_post(s, study.tag_informative):
            states[s.series_id] = ('post', post, 2)
        elif word := name.find(PRE_NAME):
            states[s.series_id] = ('pre', f"name '{word}'", 2)
        elif study.tag_informative and study.first_post and s.order < study.first_post.order:
            states[s.series_id] = ('pre', 'no ContrastBolusAgent, before the injection', 2)
        elif study.first_post is not None:
            before = s.order < study.first_post.order
            states[s.series_id] = (
                'pre' if before else 'post',
                f'acquired {"before" if before else "after"} series {study.first_post.number} '
                f'({study.first_post.name or "contrast"})',
                1,
            )
        else:
            pending.append(s)
    states.update(_by_repeat(pending, t1_series))
    return states


def _by_repeat(
    pending: Sequence[Series], t1_series: Sequence[Series]
) -> dict[str, tuple[str, str, int]]:
    """With no contrast evidence in the study, a T1 acquired after an earlier, separate T1
    acquisition is taken as the post-contrast repeat (the usual pre/post pair of one protocol);
    reconstructions of one acquisition (same acquisition time) are not a repeat."""
    if not pending:
        return {}
    acquisitions = {_acquisition_key(s) for s in t1_series}
    last = _acquisition_key(max(t1_series, key=lambda s: s.order))
    states = {}
    for s in pending:
        if len(acquisitions) > 1 and _acquisition_key(s) == last:
            why = 'no contrast evidence in the study; last of several T1 acquisitions'
            states[s.series_id] = ('post', why, 1)
        else:
            states[s.series_id] = ('pre', 'no contrast evidence', 0)
    return states


def _acquisition_key(series: Series) -> tuple:
    """One key per acquisition: reconstructions of the same acquisition share it."""
    e = series.extras
    seconds = seconds_of_day(e.acquisition_time)
    if seconds is None:  # without an acquisition time, each series counts as its own
        return ('series', series.number)
    return ('acquired', e.acquisition_date or e.study_date, seconds)


# ---------------------------------------------------------------------------------------------
# Step 5: choose one series per role


@dataclass(frozen=True)
class _Candidate:
    decision: Decision
    strength: int  # contrast evidence strength (T1 roles), see contrast_states


TIE_BREAKS: tuple[tuple[str, Callable[[_Candidate], object]], ...] = (
    ('3D before 2D', lambda c: c.decision.dimension == '3D'),
    ('stronger contrast evidence', lambda c: c.strength),
    ('original before reformatted, ImageType MPR', lambda c: 'MPR' not in _types(c)),
    ('prescan-normalised, ImageType NORM', lambda c: 'NORM' in _types(c)),
    ('thinner slices', lambda c: -(c.decision.series.extras.slice_thickness_mm or 99.0)),
    ('acquired later: a repeat replaces a degraded series', lambda c: c.decision.series.order),
)


def _types(candidate: _Candidate) -> set[str]:
    return {t.upper() for t in candidate.decision.series.image_type}


def _rank(candidate: _Candidate) -> tuple:
    return tuple(key(candidate) for _, key in TIE_BREAKS)


def _why_better(winner: _Candidate, loser: _Candidate) -> str:
    """The first tie-break that tells the two apart (the last one, order, always does)."""
    return next(rule for rule, key in TIE_BREAKS if key(winner) != key(loser))


# ---------------------------------------------------------------------------------------------


def route(series: Iterable[Series]) -> Routing:
    """Route the series of one study; every series gets a decision with a reason."""
    ordered = sorted(series, key=lambda s: s.acquired)
    ordered = [replace(s, order=i) for i, s in enumerate(ordered)]
    decisions: dict[str, Decision] = {}
    usable: list[Decision] = []
    for s in ordered:
        if reason := skip_reason(s):
            decisions[s.series_id] = Decision(s, reason=f'skipped: {reason}')
            continue
        kind, evidence = weighting(s)
        dim, dim_source = dimension(s)
        evidence = (*evidence, f'{dim}: {dim_source}')
        if not kind:
            why = '; '.join(evidence[:-1]) or 'no T1/T2/FLAIR cue in name, TR/TE/TI or sequence'
            decisions[s.series_id] = Decision(
                s, dimension=dim, evidence=evidence, reason=f'skipped: weighting unclear ({why})'
            )
            continue
        usable.append(Decision(s, weighting=kind, dimension=dim, evidence=evidence))

    t1 = [d.series for d in usable if d.weighting == 'T1']
    states = contrast_states(t1, _study_contrast(ordered))
    candidates: dict[str, list[_Candidate]] = {role: [] for role in ROLES}
    for d in usable:
        strength = 0
        if d.weighting == 'T1':
            state, why, strength = states[d.series.series_id]
            role = 'T1ce' if state == 'post' else 'T1w'
            d = replace(d, contrast=state, evidence=(*d.evidence, f'{state}-contrast: {why}'))
        else:
            role = {'T2': 'T2w', 'FLAIR': 'FLAIR'}[d.weighting]
        candidates[role].append(_Candidate(replace(d, role=role), strength))

    for role, pool in candidates.items():
        if not pool:
            continue
        best = max(pool, key=_rank)  # max keeps the first of equals: the earlier series
        others = [c for c in pool if c is not best]
        if others:
            lost = ', '.join(
                f'{c.decision.series.number} ({_why_better(best, c)})' for c in others
            )
            why = f'chosen as {role} over series {lost}'
        else:
            why = f'chosen as {role} (only candidate)'
        decisions[best.decision.series.series_id] = replace(best.decision, chosen=True, reason=why)
        for c in others:
            decisions[c.decision.series.series_id] = replace(
                c.decision,
                reason=f'skipped: {role} candidate; series {best.decision.series.number} chosen '
                f'({_why_better(best, c)})',
            )
    return Routing(tuple(decisions[s.series_id] for s in ordered))


def missing_reason(role: str) -> str:
    return f'missing: no series recognised as {ROLE_LABEL[role]}'
