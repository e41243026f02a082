import torch
from torch import nn

from ganworks.train.averaging import EMA
from ganworks.train.optim import AdamEpsInsideSqrt, lr_factor


def test_adam_eps_inside_sqrt_matches_the_reference_formula():
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(5))
    opt = AdamEpsInsideSqrt([p], lr=0.01, betas=(0.5, 0.999), eps=1e-8)
    ref = p.detach().clone()
    m = torch.zeros(5)
    v = torch.zeros(5)
    for t in range(1, 6):
        g = torch.randn(5) * 10**-t  # tiny gradients: where eps placement matters
        p.grad = g.clone()
        opt.step()
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.01 * (m / (1 - 0.5**t)) / torch.sqrt(v / (1 - 0.999**t) + 1e-8)
        assert torch.allclose(p.detach(), ref, atol=1e-7)


def test_ema_is_the_bias_corrected_zero_started_average():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = EMA(model, 0.9)
    a = [torch.zeros_like(q) for q in model.parameters()]  # the reference's zero-started average
    for t in range(1, 8):
        with torch.no_grad():
            for q in model.parameters():
                q.add_(torch.randn_like(q))
        ema.update(model)
        for ai, q in zip(a, model.parameters()):
            ai += 0.1 * (q.detach() - ai)
        for ai, q in zip(a, ema.model.parameters()):
            assert torch.allclose(q, ai / (1 - 0.9**t), atol=1e-6)


def test_linear_decay():
    f = lr_factor({"decay": "linear", "decay_start": 10, "decay_end": 20}, 100)
    assert f(0) == 1 and f(10) == 1 and abs(f(15) - 0.5) < 1e-12 and f(20) == 0 and f(30) == 0


def test_adam_settings_by_name_follow_sn_gan_table_1():
    import pytest

    from ganworks.config import resolve
    from ganworks.errors import ConfigError

    for name, (lr, b1, b2, n_dis) in {
        "A": (1e-4, 0.5, 0.9, 5),
        "B": (1e-4, 0.5, 0.999, 1),
        "C": (2e-4, 0.5, 0.999, 1),
        "D": (1e-3, 0.5, 0.9, 5),
        "E": (1e-3, 0.5, 0.999, 5),
        "F": (1e-3, 0.9, 0.999, 5),
    }.items():
        cfg = resolve("sngan/cifar10-cnn-sn", [f"optim.setting={name}"])
        assert (cfg["optim"]["lr"], cfg["optim"]["beta1"], cfg["optim"]["beta2"], cfg["objective"]["n_dis"]) == (
            lr,
            b1,
            b2,
            n_dis,
        )
        assert resolve(f"sngan/cifar10-cnn-sn-{name}")["objective"]["n_dis"] == n_dis
    with pytest.raises(ConfigError, match="'optim.setting' is 'G'; allowed: '', 'A', 'B', 'C', 'D', 'E', 'F'"):
        resolve("sngan/cifar10-cnn-sn", ["optim.setting=G"])
    from ganworks.config import apply_adam_setting

    edited = resolve("sngan/cifar10-cnn-sn")
    edited["optim"]["setting"] = "G"  # a config that skipped the checks
    with pytest.raises(ConfigError, match="unknown Adam setting"):
        apply_adam_setting(edited)
