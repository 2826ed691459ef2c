"""HeuDiConv heuristic of bids-arca: DICOM series to T1w, ce-gadolinium_T1w, T2w and FLAIR.

Use it with HeuDiConv directly (bids-arca installed in the same environment)::

    heudiconv --files DICOM_DIR -o BIDS_DIR -f "$(bids-arca-convert --heuristic-path)" \
        -c dcm2niix -b --minmeta

or let ``bids-arca-convert DICOM_DIR BIDS_DIR`` run it, which adds the routing report,
``sessions.tsv`` and the checks of bad input. The routing rules are in
``bids_arca/convert/routing.py`` and ``docs/convert.md``.
"""

from bids_arca.convert.hooks import (
    create_key,
    custom_callable,
    custom_seqinfo,
    infotodict,
    infotoids,
)

__all__ = ['create_key', 'custom_callable', 'custom_seqinfo', 'infotodict', 'infotoids']
