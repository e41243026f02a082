"""The Improved-GAN ImageNet model (TF imagenet/*.py) at tiny width: cross BN and the joint-batch
minibatch features by hand, the VBN generator, the 1001-way objective."""

import math

import torch
import torch.nn.functional as F

from ganworks.models import build_model
from ganworks.models.improved_gan_imagenet import CrossBatchNorm, JointMinibatchDiscrimination
from ganworks.objectives import OBJECTIVES
from ganworks.objectives.improved_gan_imagenet import gan_logit_from_1001, sigmoid_kl_with_logits


def test_cross_batch_norm_by_hand():
    torch.manual_seed(0)
    bn = CrossBatchNorm(4)
    x = torch.randn(6, 4, 3, 3) * 2 + 1
    out = bn(x)
    for ch, rows in ((slice(0, 2), slice(0, 3)), (slice(2, 4), slice(3, 6))):
        ref = x[rows, ch]
        m = ref.mean(dim=(0, 2, 3), keepdim=True)
        v = ((ref - m) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        want = (x[:, ch] - m) / torch.sqrt(v + 1e-5) * bn.gamma[ch].view(1, -1, 1, 1)
        torch.testing.assert_close(out[:, ch], want, rtol=1e-5, atol=1e-5)


def test_joint_minibatch_features_by_hand():
    torch.manual_seed(0)
    md = JointMinibatchDiscrimination(5, num_kernels=3, dim_per_kernel=2)
    h = torch.randn(4, 5)
    out = md(h)
    m = md.linear(h).view(4, 3, 2)
    B = 2
    denominator = 2 * B * B - B  # the reference's: compared pairs over the whole 2B × B block, B(2B − 1)
    for i in range(4):
        for k in range(3):
            sims = [math.exp(-(m[i, k] - m[j, k]).abs().sum().item()) for j in range(4)]
            real = [sims[j] for j in (0, 1) if j != i]
            fake = [sims[j] for j in (2, 3) if j != i]
            assert abs(out[i, k].item() - sum(real) / denominator) < 1e-6
            assert abs(out[i, 3 + k].item() - sum(fake) / denominator) < 1e-6


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    g = build_model("improved-gan-imagenet-g", width=0.05, z_dim=16, vbn_ref_size=4).train()
    x = g(g.sample_z(2))
    assert x.shape == (2, 3, 128, 128) and x.abs().max() <= 1
    assert g.z_ref.shape == (4, 16) and "noise_ref_5" in dict(g.named_buffers())
    d = build_model("improved-gan-imagenet-d", width=0.05, num_kernels=3, dim_per_kernel=2).train()
    logits = d(torch.cat([x.detach(), x.detach()]))
    assert logits.shape == (4, 1001)


def test_losses_by_hand():
    logits = torch.randn(5, 1001)
    want = torch.logsumexp(logits[:, :1000], dim=1) - logits[:, 1000]
    torch.testing.assert_close(gan_logit_from_1001(logits), want)
    l = torch.randn(7)
    t = 0.75
    bce = -(t * F.logsigmoid(l) + (1 - t) * F.logsigmoid(-l)).mean()
    h = -(t * math.log(t) + (1 - t) * math.log(1 - t))
    torch.testing.assert_close(sigmoid_kl_with_logits(l, t), bce - h)
    assert sigmoid_kl_with_logits(torch.full((3,), math.log(3.0)), 0.75).abs() < 1e-6  # 0 at the target


def test_objective_steps():
    torch.manual_seed(0)
    g = build_model("improved-gan-imagenet-g", width=0.05, z_dim=16, vbn_ref_size=4)
    d = build_model("improved-gan-imagenet-d", width=0.05, num_kernels=3, dim_per_kernel=2)
    obj = OBJECTIVES["improved-gan-imagenet"](g, d)
    batch = {"x": torch.rand(2, 3, 128, 128) * 2 - 1, "y": torch.tensor([3, 999])}
    loss, logs = obj.loss("d", batch)
    assert torch.isfinite(loss) and set(logs) >= {"d_loss_real", "d_loss_fake", "d_loss_class"}
    torch.testing.assert_close(loss, logs["d_loss_real"] + logs["d_loss_fake"] + logs["d_loss_class"])
    loss_g, _ = obj.loss("g", batch)
    loss_g.backward()
    assert g.dense.weight.grad.abs().sum() > 0
