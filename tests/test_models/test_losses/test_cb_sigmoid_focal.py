"""ClassBalancedLoss(base='sigmoid_focal'): the CB paper's sigmoid CB-Focal
against a plain per-class binary focal loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401
from mmseg_longtail.models.losses import effective_number_weights

COUNTS = [500, 100, 20, 3]


def reference(z, y, gamma, weights, ignore_index=255):
    valid = y != ignore_index
    onehot = F.one_hot(torch.where(valid, y, 0), z.shape[1]).permute(
        0, 3, 1, 2).float()
    bce = F.binary_cross_entropy_with_logits(z, onehot, reduction='none')
    p = torch.sigmoid(z)
    q = onehot * p + (1 - onehot) * (1 - p)
    per_pixel = ((1 - q)**gamma * bce).sum(1)
    w = weights[torch.where(valid, y, 0)]
    return (per_pixel * w * valid).sum() / valid.sum()


@pytest.mark.parametrize('gamma', [0.0, 1.0, 2.0])
def test_sigmoid_focal_matches_reference(gamma):
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 5, 6, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 4, (2, 5, 6), generator=gen)
    y[0, :2] = 255
    loss = MODELS.build(dict(type='ClassBalancedLoss', class_counts=COUNTS,
                             beta=0.99, base='sigmoid_focal', gamma=gamma,
                             avg_non_ignore=True))
    w = torch.from_numpy(effective_number_weights(np.array(COUNTS, float),
                                                  0.99))
    z_ref = z.clone().requires_grad_()
    z_ours = z.clone().requires_grad_()
    expected = reference(z_ref, y, gamma, w)
    got = loss(z_ours, y)
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=0)
    expected.backward()
    got.backward()
    torch.testing.assert_close(z_ours.grad, z_ref.grad, rtol=1e-5,
                               atol=1e-7)
    assert (z_ours.grad[0, :, :2] == 0).all()  # ignored pixels


def test_bad_base_names_the_field():
    with pytest.raises(ValueError, match='base must be one of'):
        MODELS.build(dict(type='ClassBalancedLoss', class_counts=COUNTS,
                          base='sigmoid'))
