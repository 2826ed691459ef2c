"""The output folder as a BIDS derivative dataset (BIDS 1.10, "Derivatives" and
"dataset_description.json"), described the way fMRIPrep describes its own outputs."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from bids_arca import __version__
from bids_arca.derivatives.search import entities
from bids_arca.errors import OutputError

PIPELINE_NAME = 'bids-arca'
BIDS_VERSION = '1.10.0'
CODE_URL = 'https://github.com/bids-arca/bids-arca'
HOW_TO_ACKNOWLEDGE = (
    'Please cite Lotan et al., AJNR 2022;43(1):24-32 (AR-CA) and Wang et al., BrainLes 2017, '
    'LNCS 10670 (cascaded anisotropic CNN), and name bids-arca with its version.'
)
# A DOI names a registrant prefix ("10.NNNN") and a suffix; anything else (CBRAIN's single-subject
# datasets say "TODO") is a placeholder, not provenance.
_DOI = re.compile(r'(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)', re.IGNORECASE)
# Files of ours that BIDS does not name yet (transforms, reports, logs, group tables, volume
# tables, provenance records, DICOM results). Folders are named without a trailing "/": the
# validator reads "dicom/" as the folder's contents only and then reports the folder itself.
BIDSIGNORE = (
    '*_xfm.*',
    '*.html',
    'figures',
    'logs',
    'group_*.tsv',
    'group_*.json',
    '*_volumes.tsv',
    '*_volumes.json',
    '*_lesions.tsv',
    '*_lesions.json',
    '*_provenance.json',
    'dicom',
    'models',
    'training',
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
    if isinstance(doi := raw.get('DatasetDOI'), str) and (match := _DOI.fullmatch(doi.strip())):
        source['DOI'] = f'doi:{match.group(1)}'
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
    """Write ``dataset_description.json`` and ``.bidsignore`` (called even when a run fails).

    Array jobs sharing the output folder write them at the same time: each file is written
    beside its place and renamed over it, so no job ever reads a half-written one.
    """
    path = output_dir / 'dataset_description.json'
    replace_text(path, json.dumps(dataset_description(bids_dir), indent=2) + '\n')
    replace_text(output_dir / '.bidsignore', '\n'.join(BIDSIGNORE) + '\n')
    return path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a private file in the same folder, renamed)."""
    temporary = path.with_name(f'.{path.name}.{os.getpid()}-{secrets.token_hex(4)}')
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


#: Spaces and grids of the derivative images (docs/outputs.md, "Spaces and grids"). Every image
#: names its space: ``space-T1ce`` (the T1ce's scanner coordinates), ``space-FLAIR`` (the FLAIR's)
#: or ``space-SRI24`` (the atlas). Without ``res-`` an image lies on its space's own grid (the
#: series as stored, the atlas); ``res-1`` is the model's 1 mm grid in the T1ce space. fMRIPrep
#: leaves its anchor space out of names; we do not, because under the BIDS inheritance rule the
#: anchor file's sidecar would then apply to the same file in every other space.
T1CE_SPACE = 'T1ce'
FLAIR_SPACE = 'FLAIR'
MODEL_RES = '1'
MODEL_RESOLUTION = (
    'the model grid: 1 mm isotropic, axes along left, posterior and superior of the T1ce '
    'space, cropped to the head'
)

#: Entity order for derivative names (BIDS 1.10 ``rules/entities.yaml``); ``from``/``to``/``mode``
#: (transforms, BEP 014) go where fMRIPrep puts them, before ``space``.
ENTITY_ORDER = (
    'sub', 'ses', 'task', 'acq', 'ce', 'rec', 'dir', 'run', 'echo', 'part',
    'from', 'to', 'mode', 'space', 'res', 'label', 'desc',
)  # fmt: skip


def derivative_name(
    source: Path | str, suffix: str, extension: str, added: dict[str, str], keep: tuple = ()
) -> str:
    """The derivative file name for ``source`` with the ``added`` entities (or replaced).

    ``keep`` limits the source entities carried over (empty: all of them), e.g. ``('sub', 'ses')``
    for a file that describes the whole session rather than one series.
    """
    merged = {k: v for k, v in entities(Path(source).name).items() if not keep or k in keep}
    merged.update(added)
    unknown = set(merged) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f'{source}: entities {sorted(unknown)} have no place in ENTITY_ORDER')
    parts = [f'{key}-{merged[key]}' for key in ENTITY_ORDER if key in merged]
    return '_'.join([*parts, suffix]) + extension


def session_folder(source: Path | str) -> Path:
    """The relative folder of a session's anatomical derivatives (``sub-01/ses-pre/anat``)."""
    found = entities(Path(source).name)
    folder = Path(f'sub-{found["sub"]}')
    if 'ses' in found:
        folder /= f'ses-{found["ses"]}'
    return folder / 'anat'


def camel_case(name: str) -> str:
    """BIDS sidecar keys are CamelCase: ``fine_spacing`` -> ``FineSpacing``."""
    return ''.join(part.capitalize() for part in name.split('_'))
