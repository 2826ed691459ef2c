"""Label schemes: explicit conversion of every BraTS year to ours, label tables, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.errors import InputDataError, UsageError
from bids_arca.labels import REPORTED_REGIONS
from bids_arca.schemes import SCHEMES, get_scheme, scheme_from_table

# One voxel per source label value; the expected label of ours for each value.
CONVERSIONS = {
    'brats2015': ({1: 1, 2: 2, 3: 1, 4: 3}),
    'brats2017': ({1: 1, 2: 2, 4: 3}),
    'brats2023': ({1: 1, 2: 2, 3: 3}),
    'brats2024': ({1: 1, 2: 2, 3: 3, 4: 4}),
    'ours': ({1: 1, 2: 2, 3: 3, 4: 4}),
}


@pytest.mark.parametrize('name', CONVERSIONS)
def test_to_ours_maps_each_label(name):
    mapping = CONVERSIONS[name]
    source = np.array([0, *mapping], dtype=np.int16)
    expected = np.array([0, *mapping.values()], dtype=np.uint8)
    assert np.array_equal(SCHEMES[name].to_ours(source), expected)


def test_brats2017_label_4_is_enhancing_not_cavity():
    # The year matters: 4 is ET in 2017-2021 and the resection cavity in 2024.
    four = np.array([4])
    assert get_scheme('brats2021').to_ours(four)[0] == 3
    assert get_scheme('brats2024').to_ours(four)[0] == 4


def test_brats2012_core_is_coarse():
    scheme = get_scheme('brats2012')
    labels = np.array([0, 1, 2])
    assert scheme.region_mask(labels, REPORTED_REGIONS['WT']).tolist() == [False, True, True]
    assert scheme.region_mask(labels, REPORTED_REGIONS['TC']).tolist() == [False, False, True]
    assert scheme.region_mask(labels, REPORTED_REGIONS['ED']).tolist() == [False, True, False]
    assert not scheme.evaluable(REPORTED_REGIONS['ET'])
    assert not scheme.evaluable(REPORTED_REGIONS['NEC'])
    with pytest.raises(UsageError, match='no single equivalent'):
        scheme.to_ours(labels)


def test_regions_in_brats2023_match_nnunet_conversion():
    # nnU-Net's BraTS regions after the remap: WT (1,2,3), TC (1,3), ET (3).
    labels = np.array([0, 1, 2, 3])
    scheme = get_scheme('brats2023')
    assert scheme.region_mask(labels, REPORTED_REGIONS['WT']).tolist() == [0, 1, 1, 1]
    assert scheme.region_mask(labels, REPORTED_REGIONS['TC']).tolist() == [0, 1, 0, 1]
    assert scheme.region_mask(labels, REPORTED_REGIONS['ET']).tolist() == [0, 0, 0, 1]


def test_unknown_values_are_refused(tmp_path):
    with pytest.raises(InputDataError, match=r'label value\(s\) 3 are not in the brats2017'):
        get_scheme('brats2017').check_values(np.array([0, 1, 3]), tmp_path / 'x.nii.gz')


def test_unknown_scheme_name():
    with pytest.raises(UsageError, match='unknown label scheme'):
        get_scheme('brats1999')


def test_scheme_from_table(tmp_path):
    table = tmp_path / 'dseg.tsv'
    table.write_text('index\tname\tabbreviation\n1\tnecrotic\tNCR\n2\tedema\tED\n4\tenh\tET\n')
    scheme = scheme_from_table(table)
    assert np.array_equal(scheme.to_ours(np.array([0, 1, 2, 4])), [0, 1, 2, 3])


def test_table_with_coarse_core_limits_regions(tmp_path):
    table = tmp_path / 'dseg.tsv'
    table.write_text('index\tname\tabbreviation\n1\tedema\tED\n2\tcore\tTC\n')
    scheme = scheme_from_table(table)
    assert scheme.evaluable(REPORTED_REGIONS['TC'])
    assert not scheme.evaluable(REPORTED_REGIONS['ET'])


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('index\tname\n1\tedema\n', 'abbreviation'),
        ('index\tname\tabbreviation\n1\tgrey matter\tGM\n', "'GM'"),
        ('index\tname\tabbreviation\none\tedema\tED\n', 'not an integer'),
    ],
)
def test_bad_tables_are_refused(tmp_path, content, message):
    table = tmp_path / 'dseg.tsv'
    table.write_text(content)
    with pytest.raises(InputDataError, match=message):
        scheme_from_table(table)
