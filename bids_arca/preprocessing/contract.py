"""What a session's preprocessing takes and gives: the command line's choices
(:class:`PreprocOptions`) and, for callers that want the model inputs in memory (training), one
session as the networks see it (:class:`ModelInputs`).

Light on purpose (no nipype, no image libraries), so that training and the level runners can
name both without loading the preprocessing graph (:mod:`bids_arca.workflows.preprocessing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bids_arca.preprocessing import DEFAULT_OPTIONS

if TYPE_CHECKING:
    import numpy as np

    from bids_arca.preprocessing.space import SessionSpace


@dataclass(frozen=True)
class PreprocOptions:
    """What the command line decides about preprocessing."""

    skull_strip: str = DEFAULT_OPTIONS['skull_strip']
    model_space: str = DEFAULT_OPTIONS['model_space']
    fix_left_right: bool = False
    device: str = 'cpu'
    omp_nthreads: int = 1

    @classmethod
    def chosen(cls, opts) -> PreprocOptions:
        """The parsed command line's choices (at the participant level, once ``--skull-strip``
        and ``--model-space`` are settled by the model card)."""
        return cls(
            skull_strip=opts.skull_strip,
            model_space=opts.model_space,
            fix_left_right=opts.fix_left_right,
            device=opts.device,
            omp_nthreads=opts.omp_nthreads,
        )

    def recorded(self) -> dict:
        """The options that change the model inputs (a model card records them)."""
        return {
            'skull_strip': self.skull_strip,
            'model_space': self.model_space,
            'fix_left_right': self.fix_left_right,
        }


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """One session as the networks see it (the input contract of ``bids_arca.model.inference``):
    ``images`` (4, X, Y, Z) float32 in channel order FLAIR, T1w, T1ce, T2w, z-scored in the
    brain and 0 outside it, on ``space.grid`` (1 mm, axes pointing left, posterior, superior);
    ``brain`` the brain mask on that grid; ``space`` the way back to the native series."""

    images: np.ndarray
    brain: np.ndarray
    space: SessionSpace
