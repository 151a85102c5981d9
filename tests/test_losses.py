"""Each loss against a slow, obvious computation of the paper's formula (Gatys et al. 2015)."""

from __future__ import annotations

import itertools

import pytest
import torch

from painterly.losses import blend_grams, content_loss, gram_matrix, style_loss, tv_loss


@pytest.fixture
def feats() -> torch.Tensor:
    # Two images, N = 3 feature maps of M = 4 x 5 = 20 positions; float64 so loops and bmm agree.
    return torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def slow_gram(f: torch.Tensor) -> torch.Tensor:
    """G_ij = sum_k F_ik F_jk / (N M), one entry at a time."""
    b, n, h, w = f.shape
    m = h * w
    g = torch.zeros(b, n, n, dtype=f.dtype)
    for bi, i, j in itertools.product(range(b), range(n), range(n)):
        total = 0.0
        for y, x in itertools.product(range(h), range(w)):
            total += float(f[bi, i, y, x]) * float(f[bi, j, y, x])
        g[bi, i, j] = total / (n * m)
    return g


def test_gram_matrix_is_the_papers_normalised_gram(feats):
    g = gram_matrix(feats)
    assert g.shape == (2, 3, 3)
    torch.testing.assert_close(g, slow_gram(feats))
    torch.testing.assert_close(g, g.transpose(1, 2))  # symmetric


def test_style_loss_is_gatys_E_l(feats):
    # E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2 with the raw (unnormalised) Grams G and A.
    x, s = feats[:1], feats[1:]
    n, m = x.shape[1], x.shape[2] * x.shape[3]
    g_raw = torch.einsum("bik,bjk->bij", x.flatten(2), x.flatten(2))
    a_raw = torch.einsum("bik,bjk->bij", s.flatten(2), s.flatten(2))
    expected = ((g_raw - a_raw) ** 2).sum() / (4 * n**2 * m**2)
    torch.testing.assert_close(style_loss(gram_matrix(x), gram_matrix(s)), expected)
    assert float(style_loss(gram_matrix(x), gram_matrix(x))) == 0.0


def test_raw_gram_and_mean_style_loss_for_the_classic_recipe(feats):
    # The classic recipe's form: G = F F^T unnormalised, loss mean_ij (G_ij - A_ij)^2.
    x, s = feats[:1], feats[1:]
    n, m = x.shape[1], x.shape[2] * x.shape[3]
    g_raw, a_raw = gram_matrix(x, normalize=False), gram_matrix(s, normalize=False)
    torch.testing.assert_close(g_raw, slow_gram(x) * (n * m))
    expected = ((g_raw - a_raw) ** 2).sum() / n**2
    torch.testing.assert_close(style_loss(g_raw, a_raw, "mean"), expected)
    # It grows with the square of the number of positions; Gatys' normalised E_l does not.
    x2, s2 = x.repeat(1, 1, 2, 1), s.repeat(1, 1, 2, 1)  # every position twice: M doubles
    torch.testing.assert_close(style_loss(gram_matrix(x2, False), gram_matrix(s2, False), "mean"), 4 * expected)
    torch.testing.assert_close(style_loss(gram_matrix(x2), gram_matrix(s2)), style_loss(gram_matrix(x), gram_matrix(s)))


def test_content_loss_sum_and_mean(feats):
    f, p = feats[:1], feats[1:]
    half_sum = 0.0
    for idx in itertools.product(*map(range, f.shape)):
        half_sum += 0.5 * (float(f[idx]) - float(p[idx])) ** 2
    assert float(content_loss(f, p, "sum")) == pytest.approx(half_sum, rel=1e-12)
    assert float(content_loss(f, p, "mean")) == pytest.approx(2 * half_sum / f.numel(), rel=1e-12)
    assert float(content_loss(f, f)) == 0.0


def test_tv_loss_is_mean_squared_neighbour_difference():
    img = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, c, h, w = img.shape
    down = [(img[0, k, y + 1, x] - img[0, k, y, x]) ** 2 for k in range(c) for y in range(h - 1) for x in range(w)]
    right = [(img[0, k, y, x + 1] - img[0, k, y, x]) ** 2 for k in range(c) for y in range(h) for x in range(w - 1)]
    expected = sum(down) / len(down) + sum(right) / len(right)
    assert float(tv_loss(img)) == pytest.approx(float(expected), rel=1e-12)
    assert float(tv_loss(torch.full((1, 3, 4, 4), 0.3))) == 0.0


def test_blend_grams_is_the_weighted_mean():
    a, b = torch.ones(1, 2, 2), torch.full((1, 2, 2), 3.0)
    torch.testing.assert_close(blend_grams([a, b], [1, 3]), torch.full((1, 2, 2), 2.5))
    torch.testing.assert_close(blend_grams([a, b], [1, 0]), a)
    with pytest.raises(ValueError, match="zero"):
        blend_grams([a, b], [0, 0])


def test_losses_have_gradients(feats):
    x = feats[:1].clone().requires_grad_(True)
    (style_loss(gram_matrix(x), gram_matrix(feats[1:])) + content_loss(x, feats[1:]) + tv_loss(x)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
