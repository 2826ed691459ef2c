"""WNet, TNet and ENet: parameter counts of the spec and slab shapes (19 -> 11 slices)."""

from __future__ import annotations

import pytest
import torch

from bids_arca.model.cacnn import CACNN, CACNNConfig, count_parameters, enet, tnet, wnet


def test_parameter_counts_match_the_checkpoints():
    # docs/model-spec.md, Parameter counts (equal to the variables in Wang's checkpoints)
    assert count_parameters(wnet()) == 214_470
    assert count_parameters(tnet()) == 214_470
    assert count_parameters(enet()) == 204_396


@pytest.mark.parametrize(('factory', 'size'), [(wnet, 48), (enet, 18)])
def test_slab_of_19_slices_predicts_its_central_11(factory, size):
    net = factory().eval()
    with torch.no_grad():
        out = net(torch.randn(2, 4, 19, size, size + 4))
    assert out.shape == (2, 2, 11, size, size + 4)


def test_features_for_a_vae_head():
    net = wnet().eval()
    with torch.no_grad():
        f1, f2, f3 = net.forward_features(torch.randn(1, 4, 23, 32, 32))
    assert f1.shape == (1, 32, 19, 16, 16)
    assert f2.shape == (1, 32, 17, 8, 8)
    assert f3.shape == (1, 32, 15, 8, 8)


def test_in_plane_size_must_fit_the_downsampling():
    with pytest.raises(ValueError, match='multiple of 4'):
        wnet()(torch.randn(1, 4, 19, 30, 32))
    enet().eval()(torch.randn(1, 4, 19, 30, 30))  # one downsampling: multiples of 2 suffice


def test_switches_change_the_architecture():
    arcnet_like = CACNN(CACNNConfig(prelu='scalar', norm_stats='running'))
    assert arcnet_like.block1_2.act0.weight.numel() == 1
    assert arcnet_like.fuse1.norm.running_mean is not None
    assert wnet().fuse1.norm.running_mean is None  # Wang: batch statistics, no running averages
    with pytest.raises(ValueError, match='prelu'):
        CACNN(CACNNConfig(prelu='leaky'))


def test_arcnet_variant_has_the_parameter_count_of_the_spec():
    arcnet = CACNN(
        CACNNConfig(stem='arcnet', prelu='scalar', deconv_kernel=2, padding='symmetric')
    )
    assert count_parameters(arcnet) == 222_597  # docs/model-spec.md
    assert not arcnet.packable  # its 3x3x3 stem pads along the slice axis
    with torch.no_grad():
        assert arcnet.eval()(torch.randn(1, 4, 32, 16, 16)).shape == (1, 2, 24, 16, 16)
