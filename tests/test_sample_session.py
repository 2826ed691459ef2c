"""Phantom sessions in memory: poses, geometry, truth on the T1ce grid, determinism, defects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.sample.acquisition import LPS_TO_RAS, Stack, sample, slice_geometry
from bids_arca.sample.anatomy import build_head
from bids_arca.sample.protocols import SIEMENS
from bids_arca.sample.study import Defect, make_session, make_subject


@pytest.fixture(scope='module')
def preop():
    return make_session(1, 'preop', seed=3, small=True, size_ml=60.0)


def _map(source, target, source_pose=None, target_pose=None):
    """Resample ``source`` (a Stack) onto ``target``'s grid by header, or through poses."""
    world = target.affine
    if source_pose is not None:
        world = source_pose @ np.linalg.inv(target_pose) @ world
    mapping = np.linalg.inv(source.affine) @ world
    return ndi.affine_transform(
        source.data.astype(np.float32),
        mapping[:3, :3],
        mapping[:3, 3],
        output_shape=target.data.shape,
        order=1,
    )


def test_series_have_their_own_pose_and_headers_hide_it(preop):
    t1, t1ce = preop.get('T1w'), preop.get('T1ce')
    angles = np.subtract(
        preop.info['HeadToScanner']['T1w']['rotation_deg'],
        preop.info['HeadToScanner']['T1ce']['rotation_deg'],
    )
    assert np.abs(angles).max() > 0.5  # the patient moved between series
    header_only = _map(t1.stack, t1ce.stack)
    with_pose = _map(t1.stack, t1ce.stack, t1.head_to_scanner, t1ce.head_to_scanner)
    target = t1ce.stack.data.astype(np.float32)
    r_header = np.corrcoef(header_only.ravel(), target.ravel())[0, 1]
    r_pose = np.corrcoef(with_pose.ravel(), target.ravel())[0, 1]
    assert r_pose > 0.9
    assert r_pose > r_header + 0.03  # only the known pose aligns them: registration is needed


def test_truth_lines_up_with_image_features(preop):
    head = build_head(3.0)
    t1ce, flair = preop.get('T1ce'), preop.get('FLAIR')
    truth = preop.truth
    assert truth.shape == t1ce.stack.data.shape
    np.testing.assert_allclose(preop.truth_affine, t1ce.stack.affine)
    wm = sample(head.wm, head.affine, t1ce.head_to_scanner, t1ce.stack.affine_lps, truth.shape, 0)
    white = (wm > 0.9) & (truth == 0)
    data = t1ce.stack.data.astype(float)
    assert data[truth == ET].mean() > 1.1 * data[white].mean()
    assert data[truth == ET].mean() > 1.5 * data[truth == NETC].mean()
    # Through the poses the truth also lands on the oedema of the FLAIR.
    truth_stack = Stack(truth.astype(np.float32), t1ce.stack.affine_lps, 1.0)
    labels = _map(truth_stack, flair.stack, t1ce.head_to_scanner, flair.head_to_scanner)
    edema = np.isclose(labels, SNFH, atol=0.01)
    brain = flair.stack.data > np.percentile(flair.stack.data, 60)
    assert flair.stack.data[edema].mean() > 1.3 * flair.stack.data[brain & ~edema].mean()


def test_truth_volumes_and_value_range(preop):
    voxel_ml = abs(np.linalg.det(preop.truth_affine[:3, :3])) / 1000
    assert preop.info['VolumesML']['ET'] == pytest.approx((preop.truth == ET).sum() * voxel_ml)
    assert preop.info['VolumesML']['WT'] == pytest.approx(60.0, rel=0.15)
    assert not (preop.truth == RC).any() and preop.info['Surgery'] == 'pre'
    for series in preop.series:
        data = series.stack.data
        assert data.dtype == np.uint16 and 1000 < data.max() <= 4095
        assert data[:3, :3].mean() > 0  # Rician noise floor in the air


def test_slice_profile_averages_thick_slices():
    head_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    image = np.zeros((40, 40, 40), dtype=np.float32)
    image[:, :, 20] = 1.0  # a 1 mm sheet across axial slices
    protocol = SIEMENS['T2w'][2]
    affine, shape, thickness, acquired = slice_geometry(
        protocol, 'tra', np.array([-20.0, -20.0, 20.0]), np.eye(3), 1.0
    )
    assert (thickness, acquired, np.linalg.norm(affine[:3, 2])) == (5.0, 0.9, 6.0)
    assert shape[:2] == (512, 512)  # 230.4 mm at 0.45 mm
    flip = LPS_TO_RAS
    centre = np.linalg.inv(flip @ affine) @ [20.0, 20.0, 20.0, 1.0]
    k = round(centre[2])
    thick = sample(image, head_affine, np.eye(4), affine, shape, thickness)
    thin = sample(image, head_affine, np.eye(4), affine, shape, 1.0)
    assert thin[:, :, k].max() == pytest.approx(1.0)
    assert thick[:, :, k].max() == pytest.approx(0.2, abs=0.01)


def test_same_seed_same_data_whatever_else_was_made():
    first = make_session(2, 'postop', seed=5, small=True)
    make_subject.cache_clear()
    make_session(1, 'preop', seed=5, small=True)
    again = make_session(2, 'postop', seed=5, small=True)
    other = make_session(2, 'postop', seed=6, small=True)
    assert [s.protocol.description for s in first.series] == [
        s.protocol.description for s in again.series
    ]
    for a, b in zip(first.series, again.series, strict=True):
        np.testing.assert_array_equal(a.stack.data, b.stack.data)
    np.testing.assert_array_equal(first.truth, again.truth)
    assert first.study['uid'] == again.study['uid'] != other.study['uid']
    assert not np.array_equal(first.head_truth, other.head_truth)


def test_defects_are_applied(preop):
    flawed = make_session(
        1,
        'preop',
        seed=3,
        small=True,
        size_ml=60.0,
        defects=('mirror:FLAIR', 'missing:T2w', 'localizer', 'derived'),
    )
    roles = [s.role for s in flawed.series]
    assert 'T2w' not in roles and roles[0] == 'localizer' and roles[-1] == 'derived'
    np.testing.assert_array_equal(flawed.truth, preop.truth)
    mirrored, plain = flawed.get('FLAIR').stack, preop.get('FLAIR').stack
    norms = np.linalg.norm(plain.affine_lps[:3, :3], axis=0)
    lr = int(np.argmax(np.abs(plain.affine_lps[0, :3]) / norms))
    np.testing.assert_array_equal(mirrored.data, np.flip(plain.data, axis=lr))
    np.testing.assert_array_equal(mirrored.affine_lps, plain.affine_lps)
    np.testing.assert_array_equal(flawed.get('T1ce').stack.data, preop.get('T1ce').stack.data)
    scout = flawed.get('localizer')
    normals = [s.affine_lps[:3, 2] / np.linalg.norm(s.affine_lps[:3, 2]) for s in scout.stacks]
    assert len(scout.stacks) == 3 and abs(np.linalg.det(np.array(normals))) > 0.95
    derived = flawed.get('derived')
    assert derived.image_type[0] == 'DERIVED'
    np.testing.assert_array_equal(derived.head_to_scanner, flawed.get('T1ce').head_to_scanner)
    assert flawed.info['Defects'] == ['mirror:FLAIR', 'missing:T2w', 'localizer', 'derived']
    with pytest.raises(ValueError, match='unknown series'):
        Defect.parse('mirror:DWI')


def test_lesion_type_and_course_recorded():
    post = make_session(3, 'fu2', seed=1, small=True, lesion='metastases')
    assert post.info['LesionType'] == 'metastases'
    assert post.info['Surgery'] == 'post' and post.info['DaysFromSurgery'] > 150
    assert (post.truth == RC).any()
