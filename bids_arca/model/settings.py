"""What a cascade model needs besides its weights: networks, patch sizes and cascade rules.

These settings travel in the model card (``model.json``), so that a model fine-tuned with other
patch sizes or thresholds runs with the same inference code.
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_arca.model.cacnn import CACNNConfig

VIEWS = ('axial', 'sagittal', 'coronal')
STAGES = ('wt', 'tc', 'et')


@dataclass(frozen=True)
class StageSettings:
    """One stage of the cascade (WT, TC or ET): its network and its smallest in-plane tile.

    Each view's tile is ``max(size rounded up to 4, min_tile)`` per in-plane axis (Wang's
    ``shape_mode`` 1 and 2 give this same rule).
    """

    network: CACNNConfig
    min_tile: dict[str, tuple[int, int]]

    def to_dict(self) -> dict:
        return {
            'network': self.network.to_dict(),
            'min_tile': {view: list(tile) for view, tile in self.min_tile.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> StageSettings:
        return cls(
            CACNNConfig(**data['network']),
            {view: (int(tile[0]), int(tile[1])) for view, tile in data['min_tile'].items()},
        )


@dataclass(frozen=True)
class CascadeSettings:
    """Slab geometry and the cascade's rules (``docs/model-spec.md``, Patch sizes, Inference).

    ``slabs_per_batch`` is part of the model, not a speed setting: with batch-statistics
    normalisation the output depends on which slabs are normalised together, so slabs are always
    grouped by this number, the last group filled up with noise slabs, whatever the device.
    """

    stages: dict[str, StageSettings]
    slab_slices: int = 19
    slabs_per_batch: int = 5
    roi_margin: int = 5
    wt_min_component: int = 2000
    et_min_voxels: int = 30
    views: tuple[str, ...] = VIEWS

    @property
    def output_slices(self) -> int:
        return self.slab_slices - 8

    def to_dict(self) -> dict:
        return {
            'stages': {name: stage.to_dict() for name, stage in self.stages.items()},
            'slab_slices': self.slab_slices,
            'slabs_per_batch': self.slabs_per_batch,
            'roi_margin': self.roi_margin,
            'wt_min_component': self.wt_min_component,
            'et_min_voxels': self.et_min_voxels,
            'views': list(self.views),
        }

    @classmethod
    def from_dict(cls, data: dict) -> CascadeSettings:
        return cls(
            stages={name: StageSettings.from_dict(s) for name, s in data['stages'].items()},
            slab_slices=int(data['slab_slices']),
            slabs_per_batch=int(data['slabs_per_batch']),
            roi_margin=int(data['roi_margin']),
            wt_min_component=int(data['wt_min_component']),
            et_min_voxels=int(data['et_min_voxels']),
            views=tuple(data['views']),
        )


def wang_brats17_settings() -> CascadeSettings:
    """Wang's BraTS-2017 test configuration (``config17/test_all_class.txt``)."""
    twice, once = CACNNConfig(downsample_twice=True), CACNNConfig(downsample_twice=False)
    core_tile = {view: (96, 96) for view in VIEWS}
    return CascadeSettings(
        stages={
            'wt': StageSettings(
                twice, {'axial': (180, 160), 'sagittal': (160, 180), 'coronal': (160, 160)}
            ),
            'tc': StageSettings(twice, core_tile),
            'et': StageSettings(once, core_tile),
        }
    )
