import torch

from ganworks.models import build_model
from ganworks.nn.weight_norm import scale


def test_shapes_gradients_and_feature_layer():
    G = build_model("improved-gan-mnist-g", width=0.1)
    D = build_model("improved-gan-mnist-d", width=0.1)
    z = G.sample_z(6)
    assert z.shape == (6, 100) and z.min() >= 0 and z.max() < 1  # Uniform[0,1)
    x = G(z)
    assert x.shape == (6, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    logits, feats = D(x, with_features=True)
    assert logits.shape == (6, 10) and feats.shape == (6, 25)  # 250 units × width 0.1
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad)
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_full_size_architecture_and_trainable_scales():
    D = build_model("improved-gan-mnist-d")
    sizes = [layer[0].weight.shape for layer in D.hidden] + [D.out.weight.shape]
    assert [s[0] for s in sizes] == [1000, 500, 250, 250, 250, 10]
    assert all(not scale(layer[0]).requires_grad for layer in D.hidden)
    assert scale(D.out).requires_grad
    G = build_model("improved-gan-mnist-g")
    assert scale(G.out).requires_grad and torch.all(scale(G.out) == 1)


def test_noise_only_in_training_mode():
    D = build_model("improved-gan-mnist-d", width=0.05)
    x = torch.rand(4, 1, 28, 28)
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    assert not torch.equal(D(x), D(x))
