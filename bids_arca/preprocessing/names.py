"""Names, BIDS URIs and the common sidecar fields of a session's preprocessing derivatives
(docs/preprocessing.md, "Outputs"; the spaces and grids: docs/outputs.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bids_arca.derivatives.description import (
    MODEL_RES,
    MODEL_RESOLUTION,
    T1CE_SPACE,
    derivative_name,
    session_folder,
)
from bids_arca.derivatives.search import entities
from bids_arca.preprocessing import MOVING, REFERENCE
from bids_arca.provenance import bids_uri

if TYPE_CHECKING:
    from bids_arca.inputs import SessionInputs

SRI24_REFERENCE = 'https://www.nitrc.org/projects/sri24/'


class PreprocNames:
    """Derivative file names and BIDS URIs of one session (A2 of the conventions)."""

    def __init__(self, session: SessionInputs, bids_dir: Path, output_dir: Path, space: str):
        self.images = session.images
        self.bids_dir = bids_dir
        self.output_dir = output_dir
        self.space = space
        self.t1ce = session.images[REFERENCE]
        self.folder = session_folder(self.t1ce)

    def raw(self, role: str) -> str:
        return bids_uri(self.images[role], self.bids_dir, 'raw')

    def own(self, relative: Path) -> str:
        return bids_uri(self.output_dir / relative, self.output_dir, '')

    def _session(self, suffix: str, extension: str, entities: dict) -> Path:
        return self.folder / derivative_name(
            self.t1ce, suffix, extension, entities, keep=('sub', 'ses')
        )

    def model_grid(self) -> dict[str, str]:
        """The entities of the model grid: the T1ce space at 1 mm, or the atlas's own grid."""
        return {'space': self.space} | ({'res': MODEL_RES} if self.space == T1CE_SPACE else {})

    def preproc(self, role: str, extension: str) -> Path:
        """A model input: ``desc-preproc`` on the model grid. The T1w without contrast agent
        says so (``ce-none``): otherwise every entity of its name would be in the T1ce's, and
        its sidecar would apply to the T1ce too (BIDS inheritance)."""
        source = self.images[role]
        suffix = Path(source).name.split('.')[0].rsplit('_', 1)[1]
        added = self.model_grid() | {'desc': 'preproc'}
        if suffix == 'T1w' and role != REFERENCE and 'ce' not in entities(Path(source).name):
            added['ce'] = 'none'
        return self.folder / derivative_name(source, suffix, extension, added)

    def mask(self, extension: str, model_grid: bool) -> Path:
        """The brain mask: on the T1ce grid (``desc-brain``), or on the model grid with the
        model inputs (``desc-preproc``; a ``desc-brain`` there would inherit the other's
        sidecar)."""
        if model_grid:
            return self._session('mask', extension, self.model_grid() | {'desc': 'preproc'})
        return self._session('mask', extension, {'space': T1CE_SPACE, 'desc': 'brain'})

    def transform(self, role: str, extension: str) -> Path:
        entities = {'from': role, 'to': REFERENCE, 'mode': 'image'}
        return self._session('xfm', extension, entities)

    def atlas_transform(self, extension: str) -> Path:
        return self._session('xfm', extension, {'from': REFERENCE, 'to': 'SRI24', 'mode': 'image'})

    def figure(self, index: int) -> Path:
        figures = Path(f'sub-{entities(Path(self.t1ce).name)["sub"]}') / 'figures'
        if index == 0:
            name = derivative_name(self.t1ce, 'mask', '.png', {'desc': 'brain'}, ('sub', 'ses'))
        else:
            role = MOVING[index - 1]
            name = derivative_name(self.t1ce, role, '.png', {'desc': 'coreg'}, ('sub', 'ses'))
        return figures / name

    def spatial_reference(self, model_grid: bool) -> str:
        if model_grid and self.space == 'SRI24':
            return SRI24_REFERENCE
        return self.raw(REFERENCE)

    def _grid_metadata(self, model_grid: bool) -> dict:
        found = {'SpatialReference': self.spatial_reference(model_grid)}
        if model_grid and 'res' in self.model_grid():
            found['Resolution'] = MODEL_RESOLUTION
        return found

    def mask_metadata(self, model_grid: bool) -> dict:
        where = 'the model grid, with the model inputs' if model_grid else 'the T1ce grid'
        return {
            'Description': f'Brain mask of the T1ce on {where}.',
            'Sources': [self.raw(REFERENCE)],
            **self._grid_metadata(model_grid),
        }

    def preproc_metadata(self, role: str) -> dict:
        sources = [self.raw(role)]
        if role in MOVING:
            sources.append(self.own(self.transform(role, '.txt')))
        if self.space == 'SRI24':
            sources.append(self.own(self.atlas_transform('.txt')))
        sources.append(self.own(self.mask('.nii.gz', model_grid=True)))
        return {
            'Description': f'The {role} as the network sees it: on the model grid, '
            'skull-stripped, z-scored inside the brain.',
            'Sources': sources,
            **self._grid_metadata(True),
        }
