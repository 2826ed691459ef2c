"""Per-session preprocessing: checks, coregistration, model space, skull stripping, z-scoring.

One module per step, each a set of plain functions on arrays and 4x4 matrices (no nipype, no
files unless the function is about files); :mod:`bids_arca.workflows.preprocessing` wires them
into a nipype workflow.

Conventions shared by every module:

- Geometry is NIfTI's: an image is a 3-D array plus a 4x4 affine mapping voxel indices to RAS+
  millimetres. ITK/ANTs work in LPS+; :mod:`~bids_arca.preprocessing.transforms` converts at the
  border, nowhere else.
- A spatial transform between two images is a 4x4 RAS+ matrix that maps a point of the
  *reference* (fixed) image to the corresponding point of the *moving* image, as ITK does. To
  resample a moving image onto a reference grid one therefore evaluates the moving image at
  ``matrix @ reference_point``, and transforms chain by matrix products, so every image is
  interpolated exactly once.
- Roles are the keys of :data:`bids_arca.inputs.ROLES`: ``T1w``, ``T1ce``, ``T2w``, ``FLAIR``.
"""

#: The order of the network's input channels (Wang et al. 2017): FLAIR, T1, T1ce, T2.
CHANNELS = ('FLAIR', 'T1w', 'T1ce', 'T2w')
#: The image every other one is registered to and whose grid the results are returned on.
REFERENCE = 'T1ce'
MOVING = ('T1w', 'T2w', 'FLAIR')
#: ``--skull-strip`` and ``--model-space`` when neither the command line nor the model card
#: (``input.preprocessing_options`` of a model trained by bids-arca) names them.
DEFAULT_OPTIONS = {'skull_strip': 'deepbet', 'model_space': 'T1ce'}
