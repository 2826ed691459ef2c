"""Phantom lesions in head space: shapes, compartments, volumes and their course over time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from bids_arca.labels import ET, NETC, RC, SNFH, region_masks
from bids_arca.sample.anatomy import Tissue, build_head
from bids_arca.sample.contrast import Compartment
from bids_arca.sample.lesion import Stage, draw_lesion, plan_lesion

SMALL = 3.0
PREOP, POSTOP, LATER = Stage(), Stage(True, 0.07), Stage(True, 6.0)


@pytest.fixture(scope='module')
def head():
    return build_head(SMALL)


def _draw(head, kind, size_ml, seed, stage):
    plan = plan_lesion(head, kind, size_ml, np.random.default_rng(seed))
    lesion = draw_lesion(head, plan, stage)
    return plan, lesion, lesion.labels(head.shape)


def _ml(mask, head):
    return mask.sum() * head.resolution**3 / 1000.0


def test_head_has_skull_scalp_and_brain_in_order(head):
    # Walking outwards from the brain at the vertex: brain, CSF/dura, bone, scalp, air.
    x, y, z = (round(v) for v in head.to_voxel([0.0, -20.0, 0.0]))
    column = head.tissue[x + 10, y, z:]
    first = {t: int(np.argmax(column == t)) for t in (Tissue.BONE, Tissue.SKIN)}
    assert column[0] == Tissue.BRAIN
    assert 0 < first[Tissue.BONE] < first[Tissue.SKIN]
    assert column[-1] == Tissue.AIR
    assert {Tissue.VITREOUS, Tissue.MARROW, Tissue.FAT, Tissue.MUSCLE} <= set(
        np.unique(head.tissue).tolist()
    )


@pytest.mark.parametrize('size_ml', [2.0, 40.0, 150.0])
def test_glioma_hits_requested_volume_and_nests(head, size_ml):
    _, _, labels = _draw(head, 'glioma', size_ml, 7, PREOP)
    regions = region_masks(labels)
    assert _ml(regions['WT'], head) == pytest.approx(size_ml, rel=0.05)
    assert regions['ET'].any() and regions['TC'].sum() > regions['ET'].sum()
    assert not (labels == RC).any()  # no cavity before surgery
    # One tumour: a single connected whole tumour, oedema only around the core.
    assert ndi.label(regions['WT'], np.ones((3, 3, 3)))[1] == 1
    assert not (ndi.binary_fill_holes(regions['TC']) & (labels == SNFH)).any()
    # Everything lies in the brain.
    assert (head.tissue[regions['WT']] == Tissue.BRAIN).all()


def test_necrosis_is_enclosed_by_the_enhancing_rim(head):
    _, lesion, labels = _draw(head, 'glioma', 60.0, 3, PREOP)
    comp = np.zeros(head.shape, dtype=np.uint8)
    comp.flat[lesion.indices] = lesion.compartments
    necrosis = comp == Compartment.NECROSIS
    assert necrosis.any()
    assert not (ndi.binary_dilation(necrosis) & (labels == SNFH)).any()
    assert (labels[necrosis] == NETC).all()


def test_edema_follows_white_matter(head):
    _, _, labels = _draw(head, 'glioma', 80.0, 5, PREOP)
    edema = labels == SNFH
    brain = head.tissue == Tissue.BRAIN
    shell = ndi.binary_dilation(labels > 0, iterations=4) & brain & (labels == 0)
    # Oedema prefers white matter over what merely surrounds the tumour.
    assert head.wm[edema].mean() > head.wm[shell].mean() + 0.1


def test_postop_cavity_persists_residual_grows_from_margin(head):
    seed = 11
    _, _, before = _draw(head, 'glioma', 40.0, seed, PREOP)
    _, _, after = _draw(head, 'glioma', 40.0, seed, POSTOP)
    _, _, later = _draw(head, 'glioma', 40.0, seed, LATER)
    for labels in (after, later):
        assert (labels == RC).any()
        # The cavity sits where the tumour was.
        overlap = ((labels == RC) & region_masks(before)['TC']).sum() / (labels == RC).sum()
        assert overlap > 0.7
    assert _ml(after == ET, head) < _ml(before == ET, head)
    assert _ml(after == SNFH, head) < _ml(before == SNFH, head)


def test_metastases_and_meningioma(head):
    plan, _, labels = _draw(head, 'metastases', 30.0, 2, PREOP)
    _, count = ndi.label(region_masks(labels)['TC'], np.ones((3, 3, 3)))
    assert count == len(plan.foci) >= 2
    # Disproportionate oedema around small enhancing lesions.
    assert _ml(labels == SNFH, head) > 2 * _ml(region_masks(labels)['TC'], head)

    plan, _, labels = _draw(head, 'meningioma', 25.0, 4, PREOP)
    mass = labels == ET
    assert plan.foci[0].extra_axial and mass.any()
    # Dural based: the mass reaches the inner surface of the skull and stays out of the bone.
    assert (ndi.binary_dilation(mass) & (head.depth > 0)).any()
    assert not np.isin(head.tissue[mass], [Tissue.BONE, Tissue.MARROW]).any()


def test_mass_effect_pushes_brain_away_before_surgery(head):
    plan, lesion, _ = _draw(head, 'glioma', 100.0, 5, PREOP)
    assert lesion.info['mass_effect_mm'] > 3.0
    box, source = lesion.warp
    grid = np.indices(source.shape[1:]) + np.array([b.start for b in box]).reshape(3, 1, 1, 1)
    centre = head.to_voxel(plan.foci[0].center).reshape(3, 1, 1, 1)
    outward = ((grid - source) * (grid - centre)).sum(axis=0)
    moved = np.abs(grid - source).sum(axis=0) > 0.1
    assert (outward[moved] > 0).mean() > 0.99  # anatomy comes from nearer the tumour centre
    assert draw_lesion(head, plan, POSTOP).warp is None
