"""The output folder as a BIDS derivative dataset (BIDS 1.10, "Derivatives" and
"dataset_description.json"), described the way fMRIPrep describes its own outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bids_arca import __version__
from bids_arca.errors import OutputError

PIPELINE_NAME = 'bids-arca'
BIDS_VERSION = '1.10.0'
CODE_URL = 'https://github.com/bids-arca/bids-arca'
HOW_TO_ACKNOWLEDGE = (
    'Please cite Lotan et al., AJNR 2022;43(1):24-32 (AR-CA) and Wang et al., BrainLes 2017, '
    'LNCS 10670 (cascaded anisotropic CNN), and name bids-arca with its version.'
)
# Files of ours that BIDS does not name yet (transforms, reports, logs, group tables, volume
# tables, provenance records, DICOM results).
BIDSIGNORE = (
    '*_xfm.*',
    '*.html',
    'figures/',
    'logs/',
    'group_*.tsv',
    'group_*.json',
    '*_volumes.tsv',
    '*_volumes.json',
    '*_provenance.json',
    'dicom/',
    'models/',
    'training/',
)


def container() -> dict[str, str] | None:
    """Describe the container this process runs in, if any (BIDS ``GeneratedBy.Container``).

    The image sets ``BIDS_ARCA_CONTAINER_TYPE`` and ``BIDS_ARCA_CONTAINER_TAG``; Apptainer and
    Singularity announce themselves through their own variables.
    """
    kind = os.environ.get('BIDS_ARCA_CONTAINER_TYPE')
    tag = os.environ.get('BIDS_ARCA_CONTAINER_TAG')
    image = os.environ.get('APPTAINER_CONTAINER') or os.environ.get('SINGULARITY_CONTAINER')
    if image:
        return {'Type': 'singularity', 'URI': image}
    if kind:
        return {'Type': kind, 'Tag': tag or f'{PIPELINE_NAME}:{__version__}'}
    return None


def dataset_description(bids_dir: Path) -> dict:
    """The derivative's ``dataset_description.json`` content for outputs made from ``bids_dir``."""
    generated_by: dict = {'Name': PIPELINE_NAME, 'Version': __version__, 'CodeURL': CODE_URL}
    if (box := container()) is not None:
        generated_by['Container'] = box
    source: dict = {'URL': Path(bids_dir).absolute().as_uri()}
    raw = _read_description(Path(bids_dir) / 'dataset_description.json')
    if doi := raw.get('DatasetDOI'):
        source['DOI'] = doi if doi.startswith('doi:') else f'doi:{doi}'
    if version := raw.get('DatasetVersion'):
        source['Version'] = version
    description = {
        'Name': f'{PIPELINE_NAME} outputs'
        + (f' for {raw["Name"]}' if isinstance(raw.get('Name'), str) else ''),
        'BIDSVersion': BIDS_VERSION,
        'DatasetType': 'derivative',
        'GeneratedBy': [generated_by],
        'SourceDatasets': [source],
        'DatasetLinks': {'raw': source['URL']},
        'HowToAcknowledge': HOW_TO_ACKNOWLEDGE,
    }
    if isinstance(raw.get('License'), str):
        description['License'] = raw['License']
    return description


def _read_description(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def check_output_dir(output_dir: Path) -> None:
    """Refuse an output folder that already holds another pipeline's derivative dataset.

    Writing our description over it would silently relabel someone else's results.
    """
    existing = _read_description(output_dir / 'dataset_description.json')
    if not existing:
        return
    names = [g.get('Name') for g in existing.get('GeneratedBy', []) if isinstance(g, dict)]
    if existing.get('DatasetType') != 'derivative' or PIPELINE_NAME not in names:
        found = ', '.join(str(n) for n in names) or existing.get('Name', 'unknown')
        raise OutputError(
            f'{output_dir / "dataset_description.json"}: the output folder already holds another '
            f'dataset ({found}); choose an empty folder or a previous bids-arca output'
        )


def write_dataset_description(output_dir: Path, bids_dir: Path) -> Path:
    """Write ``dataset_description.json`` and ``.bidsignore`` (called even when a run fails)."""
    path = output_dir / 'dataset_description.json'
    path.write_text(json.dumps(dataset_description(bids_dir), indent=2) + '\n')
    (output_dir / '.bidsignore').write_text('\n'.join(BIDSIGNORE) + '\n')
    return path
