"""Synthetic clinical glioma MRI with known truth (``bids-arca-sample``).

Typical use from tests or fixtures::

    from bids_arca.sample import make_dataset, make_session

    session = make_session(1, 'postop', small=True)  # in memory, about a second
    session.get('T1ce').stack.data, session.truth     # uint16 series, labels on its grid
    make_dataset(tmp_path / 'study', 2, ('preop', 'postop'), small=True)

See ``docs/sample-data.md``. One module per job: ``anatomy`` (head), ``lesion`` (tumours and
their course), ``contrast`` (intensities), ``protocols`` (vendor series), ``acquisition``
(pose, slices, bias, noise), ``study`` (subjects and sessions), ``dicom`` and ``bids_writer``
(outputs), ``dataset`` (everything on disk), ``mosaic`` (pictures), ``cli``.
"""

from bids_arca.sample.dataset import make_dataset
from bids_arca.sample.lesion import LESION_KINDS
from bids_arca.sample.study import Defect, Series, Session, make_session

__all__ = ['LESION_KINDS', 'Defect', 'Series', 'Session', 'make_dataset', 'make_session']
