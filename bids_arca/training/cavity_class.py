"""A cavity class for a tumour-core network that has none: the starting weights of a three-class
TNet (0 background, 1 core that is not cavity, 2 resection cavity; see
:data:`bids_arca.model.settings.CAVITY_CLASS`) from a two-class one such as Wang's.

Only the prediction heads depend on the number of classes (their widths are k, 2k and 4k, the
last layer 7k -> k). Each head keeps its old channels; its new channels start as copies of its
last old ones, read by the next layer with zero weights, and the cavity logit starts at zero. So
the old classes' logits are exactly the old network's, and training only has to grow the cavity
out of them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bids_arca.model.blocks import ConvTranspose
from bids_arca.model.cacnn import CACNN

# the fusion layer reads the heads' outputs concatenated: k, 2k and 4k channels
_FINAL_GROUPS = (1, 2, 4)


def with_cavity_class(state: dict[str, Tensor], target: CACNN) -> dict[str, Tensor]:
    """``state`` of a two-class network, widened to ``target``'s number of classes."""
    new_k = target.config.num_classes
    wanted = target.state_dict()
    old_k = int(state['final_pred.weight'].shape[0])
    if new_k <= old_k:
        raise ValueError(f'the target has {new_k} classes, the weights {old_k}')
    transposed = {
        f'{name}.weight'
        for name, module in target.named_modules()
        if isinstance(module, ConvTranspose)
    }
    out = {}
    for key, new in wanted.items():
        old = state[key]
        if old.shape == new.shape:
            out[key] = old.clone()
        elif key == 'final_pred.weight':
            out[key] = _final(old, old_k, new_k)
        else:
            out_dim, in_dim = (1, 0) if key in transposed else (0, 1)
            value = _widen_outputs(old, new.shape[out_dim], out_dim)
            if value.ndim > 1 and value.shape[in_dim] != new.shape[in_dim]:
                value = _widen_inputs(value, new.shape[in_dim], in_dim)
            out[key] = value
    return out


def _widen_outputs(value: Tensor, size: int, dim: int) -> Tensor:
    """New output channels (and their norm and activation parameters) copy the last old ones."""
    have = value.shape[dim]
    if have == size:
        return value.clone()
    extra = value.narrow(dim, have - (size - have), size - have)
    return torch.cat([value, extra], dim=dim)


def _widen_inputs(value: Tensor, size: int, dim: int) -> Tensor:
    """New input channels are read with zero weights: the outputs do not change."""
    shape = list(value.shape)
    shape[dim] = size - value.shape[dim]
    return torch.cat([value, value.new_zeros(shape)], dim=dim)


def _final(weight: Tensor, old_k: int, new_k: int) -> Tensor:
    """The last layer (k_out, 7 k_in, ...): old inputs keep their weights within each head's
    group, new inputs get zero weights, the new class logits start at zero."""
    shape = list(weight.shape)
    shape[0], shape[1] = new_k, 7 * new_k
    out = weight.new_zeros(shape)
    source = target = 0
    for factor in _FINAL_GROUPS:
        out[:old_k, target : target + factor * old_k] = weight[:, source : source + factor * old_k]
        source += factor * old_k
        target += factor * new_k
    return out
