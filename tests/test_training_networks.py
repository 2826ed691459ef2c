"""VAE head, model variants and loss terms."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from bids_arca.model.cacnn import CACNN
from bids_arca.training.losses import sigmoid_dice_loss, softmax_dice_loss, vae_terms
from bids_arca.training.networks import (
    ARCANet,
    TrainOutput,
    Variant,
    ar_network,
    cascade_network,
    count_parameters,
    stage_config,
)
from bids_arca.training.vae import VAEConfig, VAEHead


@pytest.mark.parametrize(
    ('stage', 'patch'), [('wt', (19, 48, 48)), ('et', (19, 32, 32)), ('tc', (11, 16, 16))]
)
def test_vae_reconstructs_the_input_patch_in_training_only(stage, patch):
    torch.manual_seed(0)
    net = cascade_network(stage_config(stage), Variant(), patch)
    x = torch.randn(2, 4, *patch)
    out = net.train()(x)
    assert isinstance(out, TrainOutput)
    assert out.logits.shape == (2, 2, patch[0] - 8, *patch[1:])
    assert out.recon.shape == x.shape
    assert out.mu.shape == out.logvar.shape == (2, 128)
    logits = net.eval()(x)
    assert isinstance(logits, torch.Tensor)  # eval: logits only, through the backbone alone
    assert torch.equal(logits, net.backbone.eval()(x))


def test_vae_head_leaves_the_backbone_as_it_is():
    backbone = CACNN(stage_config('wt'))
    net = cascade_network(stage_config('wt'), Variant(), (19, 32, 32))
    assert count_parameters(net.backbone) == count_parameters(backbone) == 214_470
    assert set(net.backbone.state_dict()) == set(backbone.state_dict())
    assert cascade_network(stage_config('wt'), Variant('cacnn'), (19, 32, 32)).vae is None


def test_vae_forms_and_weights():
    assert VAEConfig.form('paper') == VAEConfig(128, 0.1, 0.1)
    assert VAEConfig.form('code') == VAEConfig(16, 0.1, 0.0)
    assert VAEConfig.form('code', (0.5, 0.2)) == VAEConfig(16, 0.5, 0.2)
    with pytest.raises(ValueError, match='VAE form'):
        VAEConfig.form('other')
    head = VAEHead((32, 3, 8, 8), (4, 11, 32, 32), latent=16)
    recon, mu, _ = head(torch.randn(3, 32, 3, 8, 8))
    assert recon.shape == (3, 4, 11, 32, 32) and mu.shape == (3, 16)


def test_isotropic_switch_uses_3d_kernels_with_the_same_shapes():
    patch = (19, 32, 32)
    net = cascade_network(stage_config('wt'), Variant('cacnn', anisotropic=False), patch)
    kernels = {tuple(m.kernel_size) for m in net.modules() if isinstance(m, torch.nn.Conv3d)}
    assert (1, 3, 3) not in kernels and (3, 3, 3) in kernels and (3, 1, 1) in kernels
    assert net.eval()(torch.randn(2, 4, *patch)).shape == (2, 2, 11, 32, 32)


def test_softmax_dice_loss_bounds():
    target = torch.zeros(2, 3, 8, 8, dtype=torch.long)
    target[:, :, 2:5, 2:5] = 1
    perfect = torch.stack([1 - target, target], 1).float() * 40 - 20
    assert softmax_dice_loss(perfect, target) < 1e-3
    assert softmax_dice_loss(-perfect, target) > 0.99
    assert 0.3 < softmax_dice_loss(torch.zeros(2, 2, 3, 8, 8), target) < 0.8


def test_sigmoid_dice_loss_per_region():
    target = torch.zeros(1, 3, 4, 4, 4)
    target[:, :2, 1:3] = 1
    logits = (target * 2 - 1) * 30
    assert sigmoid_dice_loss(logits, target) < 1e-3  # an empty region predicted empty scores 1
    assert sigmoid_dice_loss(-logits, target) > 0.6


def test_vae_terms():
    x = torch.randn(2, 4, 3, 4, 4)
    zero = torch.zeros(2, 8)
    l2, kl = vae_terms(x + 0.5, x, zero, zero)
    assert l2.item() == pytest.approx(0.25)
    assert kl.item() == pytest.approx(0.0)
    _, kl = vae_terms(x, x, torch.ones(2, 8), zero)
    assert kl.item() == pytest.approx(8 / x[0].numel())  # sum of mu^2 over the latent / voxels
    assert math.isfinite(vae_terms(x, x, zero, torch.full((2, 8), -3.0))[1].item())


def test_arca_net_without_vae_returns_logits_in_training():
    net = ARCANet(CACNN(stage_config('et')))
    out = net.train()(torch.randn(2, 4, 11, 16, 16))
    assert out.recon is None and out.logits.shape == (2, 2, 3, 16, 16)


def test_isotropic_cascades_and_only_cascades_load_for_inference(tmp_path):
    from bids_arca.errors import InputDataError
    from bids_arca.model.bundle import load_bundle, write_bundle
    from bids_arca.model.settings import CascadeSettings, StageSettings
    from bids_arca.training.export import export_ar

    config = replace(stage_config('et', isotropic=True), base_channels=4)
    tile = {view: (16, 16) for view in ('axial', 'sagittal', 'coronal')}
    settings = CascadeSettings(stages={'et': StageSettings(config, tile)}, views=('axial',))
    nets = {'et': {'axial': CACNN(config)}}
    folder = write_bundle(
        tmp_path / 'iso', nets, {'name': 'iso', 'cascade': settings.to_dict()}, 'licence\n'
    )
    loaded = load_bundle(folder).nets['et']['axial']
    assert loaded.config.isotropic and not loaded.packable
    kernels = {tuple(m.kernel_size) for m in loaded.modules() if isinstance(m, torch.nn.Conv3d)}
    assert (1, 3, 3) not in kernels and (3, 3, 3) in kernels

    training = {'data': {'description': 'test'}}
    network, patch = ar_network((16, 16, 16)), (16, 16, 16)
    ar = export_ar(tmp_path / 'ar', 'ar', network, patch, training, {'model_space': 'T1ce'})
    with pytest.raises(InputDataError, match=r'SegResNetVAE.*cascades'):
        load_bundle(ar)
