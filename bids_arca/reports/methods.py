"""The methods paragraph of a session report, with numbered citations.

The text names what this run did (model, post-processing rules, interval method), so that it can
be pasted into a paper; the preprocessing step passes its own sentence and reference keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bids_arca import __version__


@dataclass(frozen=True)
class Reference:
    text: str
    doi: str | None = None


REFERENCES: dict[str, Reference] = {
    'lotan2022': Reference(
        'Lotan E, Zhang B, Dogra S, Wang WD, Carbone D, Fatterpekar G, Oermann EK, Lui YW. '
        'Development and practical implementation of a deep learning-based pipeline for '
        'automated pre- and postoperative glioma segmentation. AJNR Am J Neuroradiol. '
        '2022;43(1):24-32.',
        '10.3174/ajnr.A7363',
    ),
    'wang2018': Reference(
        'Wang G, Li W, Ourselin S, Vercauteren T. Automatic brain tumor segmentation using '
        'cascaded anisotropic convolutional neural networks. In: Brainlesion: Glioma, Multiple '
        'Sclerosis, Stroke and Traumatic Brain Injuries (BrainLes 2017). LNCS 10670. Springer; '
        '2018:178-190.',
        '10.1007/978-3-319-75238-9_16',
    ),
    'wang2019': Reference(
        'Wang G, Li W, Ourselin S, Vercauteren T. Automatic brain tumor segmentation based on '
        'cascaded convolutional neural networks with uncertainty estimation. Front Comput '
        'Neurosci. 2019;13:56.',
        '10.3389/fncom.2019.00056',
    ),
    'myronenko2019': Reference(
        'Myronenko A. 3D MRI brain tumor segmentation using autoencoder regularization. In: '
        'Brainlesion: Glioma, Multiple Sclerosis, Stroke and Traumatic Brain Injuries '
        '(BrainLes 2018). LNCS 11384. Springer; 2019:311-320.',
        '10.1007/978-3-030-11726-9_28',
    ),
    'bidsapps2017': Reference(
        'Gorgolewski KJ, Alfaro-Almagro F, Auer T, et al. BIDS apps: improving ease of use, '
        'accessibility, and reproducibility of neuroimaging data analysis methods. PLoS Comput '
        'Biol. 2017;13(3):e1005209.',
        '10.1371/journal.pcbi.1005209',
    ),
    'dcm2niix2016': Reference(
        'Li X, Morgan PS, Ashburner J, Smith J, Rorden C. The first step for neuroimaging data '
        'analysis: DICOM to NIfTI conversion. J Neurosci Methods. 2016;264:47-56.',
        '10.1016/j.jneumeth.2016.03.001',
    ),
    'ants2011': Reference(
        'Avants BB, Tustison NJ, Song G, Cook PA, Klein A, Gee JC. A reproducible evaluation of '
        'ANTs similarity metric performance in brain image registration. Neuroimage. '
        '2011;54(3):2033-2044.',
        '10.1016/j.neuroimage.2010.09.025',
    ),
    'deepbet2024': Reference(
        'Fisch L, Zumdick S, Barkhau C, et al. deepbet: fast brain extraction of T1-weighted MRI '
        'using convolutional neural networks. Comput Biol Med. 2024;179:108845.',
        '10.1016/j.compbiomed.2024.108845',
    ),
    'hdbet2019': Reference(
        'Isensee F, Schell M, Pflueger I, et al. Automated brain extraction of multisequence MRI '
        'using artificial neural networks. Hum Brain Mapp. 2019;40(17):4952-4964.',
        '10.1002/hbm.24750',
    ),
    'vovk2005': Reference(
        'Vovk V, Gammerman A, Shafer G. Algorithmic Learning in a Random World. Springer; 2005.',
        '10.1007/b106715',
    ),
    'wen2010': Reference(
        'Wen PY, Macdonald DR, Reardon DA, et al. Updated response assessment criteria for '
        'high-grade gliomas: Response Assessment in Neuro-Oncology Working Group. J Clin Oncol. '
        '2010;28(11):1963-1972.',
        '10.1200/JCO.2009.26.3541',
    ),
    'highdicom2022': Reference(
        'Bridge CP, Gorman C, Pieper S, et al. Highdicom: a Python library for standardized '
        'encoding of image annotations and machine learning model outputs in pathology and '
        'radiology. J Digit Imaging. 2022;35(6):1719-1737.',
        '10.1007/s10278-022-00683-y',
    ),
}

RULE_SENTENCES: dict[str, str] = {
    'paper': 'Following Lotan et al. {lotan2022}, holes smaller than 3 mm³ inside each region '
    'were filled and, for each cascade stage, connected components smaller than one tenth of '
    'the largest were removed.',
    'wang': 'The fusion rules of Wang et al. {wang2018} were applied: closing, removal of '
    'components under {wang_min_voxels} voxels, removal of core components lying mostly outside '
    'the whole tumour, the two-largest-components rule for the core, and removal of an enhancing '
    'region under 30 voxels.',
    'none': 'No morphological post-processing was applied.',
}
DEFAULT_PREPROCESSING = (
    'The T1-weighted, T2-weighted and FLAIR images were rigidly registered to the '
    'contrast-enhanced T1-weighted image, skull-stripped and z-scored within the brain; the '
    'preprocessing section of this report gives the details.'
)


class _Citations:
    """Numbers references in order of first use."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __getitem__(self, key: str) -> str:
        if key not in REFERENCES:
            raise KeyError(f'unknown reference {key!r}')
        if key not in self.order:
            self.order.append(key)
        return f'[{self.order.index(key) + 1}]'


class _Cite(dict):
    def __init__(self, citations: _Citations, **values):
        super().__init__(values)
        self.citations = citations

    def __missing__(self, key: str) -> str:
        return self.citations[key]


#: What the methods say of the resection cavity, by the post-operative stage's status.
CAVITY_SENTENCES = {
    '': 'The tumour-core network has a third class, the resection cavity, so that the cavity (RC) '
    'is told apart from the residual tumour (the core without the cavity); the model decides '
    'from the images where a cavity is.',
    'applied': 'A post-operative stage after the cascade, a small 3-D network reading the four '
    'contrasts around the whole tumour, labels the resection cavity (RC) apart from the residual '
    "tumour (the core without the cavity); where it finds a cavity, the cascade's enhancing "
    'tumour and core are kept only where it agrees, so that blood, a rim or the oedema around '
    'the cavity are not read as tumour. The model decides from the images where a cavity is.',
    'skipped': 'The post-operative stage (resection cavity) was not run: sessions.tsv marks this '
    'session as pre-operative.',
}


def methods(
    *,
    model_name: str,
    model_version: str,
    rules: str,
    interval: str | None,
    views: Sequence[str] = ('axial', 'sagittal', 'coronal'),
    preprocessing: str = DEFAULT_PREPROCESSING,
    preprocessing_references: Sequence[str] = ('dcm2niix2016', 'ants2011'),
    wang_min_voxels: int = 2000,
    dicom_outputs: bool = False,
    cavity: bool = False,
    postop_stage: str = '',
) -> tuple[list[str], list[Reference]]:
    """The methods paragraphs (citations as ``[n]``) and the references they cite, in order.
    ``cavity``: the model has a cavity output; ``postop_stage``: ``''`` when the model has no
    post-operative stage (a cavity then comes from the tumour-core network's third class),
    ``'applied'`` when that stage ran, ``'skipped'`` when it did not (sessions.tsv: pre-op)."""
    citations = _Citations()
    cite = _Cite(citations, wang_min_voxels=wang_min_voxels)
    model = f'{model_name} {model_version}'.strip()
    paragraphs = [
        'Gliomas were segmented with bids-arca {version} {bidsapps2017}, a BIDS App '
        're-implementing AR-CA {lotan2022}: a cascade of anisotropic convolutional networks '
        '{wang2018} that segments the whole tumour, then the tumour core (including the '
        'resection cavity after surgery) and then the enhancing tumour, trained with an '
        'autoencoder regulariser {myronenko2019}. Model: {model}.'.format_map(
            _Cite(citations, version=__version__, model=model)
        ),
        _with_citations(preprocessing, [citations[key] for key in preprocessing_references]),
        *([CAVITY_SENTENCES[postop_stage]] if cavity or postop_stage else []),
        'The probabilities of the {count} views ({views}) were averaged {wang2018} and '
        'thresholded at 0.5; the regions were nested so that the enhancing tumour lies inside '
        'the core and the core inside the whole tumour. '.format_map(
            _Cite(citations, count=len(views), views=', '.join(views))
        )
        + RULE_SENTENCES[rules].format_map(cite),
        _volumes_sentence(interval, cite),
    ]
    if dicom_outputs:
        paragraphs.append(
            'DICOM Segmentation and colour overlay objects were written with highdicom '
            '{highdicom2022}.'.format_map(cite)
        )
    return paragraphs, [REFERENCES[key] for key in citations.order]


def _with_citations(text: str, marks: Sequence[str]) -> str:
    """Put citation marks before the final full stop."""
    body = text.strip().removesuffix('.')
    return f'{body} {" ".join(marks)}.' if marks else f'{body}.'


def _volumes_sentence(interval: str | None, cite: _Cite) -> str:
    text = (
        'Volumes were computed from the number of voxels of each region and the voxel volume of '
        'the native contrast-enhanced T1-weighted grid. '
    )
    if interval == 'calibrated':
        text += (
            'Their 95% intervals come from an error model of the segmentation model calibrated '
            'against known truth by split-conformal prediction {vovk2005}, scaled by the spread '
            'of the volumes of the separate views and other probability thresholds, an '
            'uncertainty estimate of its own {wang2019}. '
        )
    elif interval == 'uncalibrated':
        text += (
            'Their ranges are those of the volumes of the separate views and other probability '
            'thresholds; the model has no calibration, so they are not confidence intervals. '
        )
    else:
        text += 'No uncertainty interval was computed. '
    return (
        text + 'Each enhancing lesion was measured bidimensionally as RANO prescribes {wen2010}: '
        'the longest diameter on the axial slice where it is largest and the longest diameter '
        'perpendicular to it.'
    ).format_map(cite)
