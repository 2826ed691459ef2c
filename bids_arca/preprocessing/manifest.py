"""What a session's preprocessing produced, by structure: one manifest per session.

The preprocessing graph's last node writes it (``manifest`` node, :data:`MANIFEST_FILE`): each
file under the role or the step it belongs to, so that the results step
(:mod:`bids_arca.results.session`) and training (:class:`~.contract.ModelInputs`) read what they
need by name, never by parsing file names or nipype's result files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bids_arca.preprocessing import CHANNELS

if TYPE_CHECKING:
    from bids_arca.preprocessing.contract import ModelInputs

#: the name of the graph's manifest node and of the file it writes into its folder
MANIFEST_NODE = 'manifest'
MANIFEST_FILE = 'preproc_manifest.json'
#: the figure of the brain mask; the registration figures are keyed by their role
MASK_FIGURE = 'brain_mask'


@dataclass(frozen=True)
class PreprocManifest:
    """One session's preprocessing outputs (absolute paths in the work folder).

    ``images``: role -> z-scored image on the model grid; ``brain_mask`` on the model grid,
    ``native_mask`` on the T1ce; ``space``: the :class:`~.space.SessionSpace` JSON;
    ``registrations``: role -> sidecar of its ``from-<role>_to-T1ce`` transform (the QC checks);
    ``figures``: :data:`MASK_FIGURE` or role -> QC picture; ``derivatives``: path relative to the
    output folder -> file, what the session publishes with its results; ``seconds``: step ->
    time (provenance only).
    """

    images: dict[str, str]
    brain_mask: str
    native_mask: str
    space: str
    registrations: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    derivatives: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=2) + '\n')
        return path

    @classmethod
    def load(cls, path: Path | str) -> PreprocManifest:
        return cls(**json.loads(Path(path).read_text()))

    def model_inputs(self) -> ModelInputs:
        """The session as the networks see it (reads the images)."""
        import numpy as np

        from bids_arca.preprocessing.contract import ModelInputs
        from bids_arca.preprocessing.series_io import read_volume
        from bids_arca.preprocessing.space import SessionSpace

        images = np.stack([read_volume(self.images[role]).data for role in CHANNELS])
        brain = read_volume(self.brain_mask).data > 0
        return ModelInputs(images, brain, SessionSpace.load(self.space))


def manifest_in(workflow_folder: Path) -> Path:
    """Where a preprocessing graph run in ``workflow_folder`` leaves its manifest."""
    return workflow_folder / MANIFEST_NODE / MANIFEST_FILE
