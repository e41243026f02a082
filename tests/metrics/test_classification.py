"""Test-error counting of discriminators used as classifiers (metrics/classification.py)."""

import torch
from torch import nn

from ganworks.data.scaling import to_float
from ganworks.metrics.classification import count_errors, count_errors_of


def test_one_pass_over_several_models_counts_each_models_errors_and_keeps_modes():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (257, 1, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 3, (257,))
    noisy = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))  # eval mode must switch dropout off
    plain = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    noisy.train()
    plain.eval()
    got = count_errors_of([noisy, plain], images, labels, "zero_one", batch_size=50)
    expected = []
    for m in (noisy, plain):  # an independent count: the whole set at once, eval mode
        was = m.training
        m.eval()
        with torch.no_grad():
            expected.append(int((m(to_float(images, "zero_one")).argmax(1) != labels).sum()))
        m.train(was)
    assert got == expected
    assert count_errors(noisy, images, labels, "zero_one", 64) == expected[0]
    assert noisy.training and not plain.training
