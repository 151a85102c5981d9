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


# --- distribution-matching losses ------------------------------------------------------------


def _positions(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, M, C): one row per position, slowly and obviously."""
    b, c, h, w = f.shape
    return torch.stack([torch.stack([f[i, :, y, x] for y in range(h) for x in range(w)]) for i in range(b)])


def slow_w2(x: torch.Tensor, s: torch.Tensor) -> float:
    """W2^2 between the Gaussian fits of two feature sets, with scipy's matrix square root, / C."""
    import numpy as np
    from scipy.linalg import sqrtm

    a, b = _positions(x)[0].numpy(), _positions(s)[0].numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.cov(a, rowvar=False, bias=True)
    cov_b = np.cov(b, rowvar=False, bias=True)
    root_b = sqrtm(cov_b).real
    cross = sqrtm(root_b @ cov_a @ root_b).real
    return float((((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross)) / a.shape[1])


def test_w2_loss_is_the_gaussian_wasserstein_distance(feats):
    from painterly.losses import blend_moments, feature_moments, w2_loss

    x, s = feats[:1], feats[1:]
    target = blend_moments([feature_moments(s)], [1.0])
    assert float(w2_loss(x, target)) == pytest.approx(slow_w2(x, s), rel=1e-6)
    assert float(w2_loss(s, target)) == pytest.approx(0.0, abs=1e-9)  # zero at the target


def test_w2_gradient_is_the_analytic_one():
    from painterly.losses import blend_moments, feature_moments, w2_loss

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = blend_moments([feature_moments(torch.randn(1, 3, 5, 4, generator=gen, dtype=torch.float64))], [1.0])
    assert torch.autograd.gradcheck(lambda t: w2_loss(t, target), (x,))


def test_w2_matrices_hold_no_denormals():
    # relu4_1 and relu5_1 of a 160 px picture read fewer positions than channels: their
    # covariances have eigenvalues at zero, and the square root and the gradient built from the
    # eigenvectors had thousands of fp32 denormals (3369 in relu5_1's root), which x86 CPUs
    # multiply in microcode: the products took 5x longer (losses._narrow).
    from painterly import images as im
    from painterly.calibrate import _picture
    from painterly.losses import blend_moments, feature_moments, w2_loss
    from painterly.vgg import get_vgg

    def denormals(t: torch.Tensor) -> int:
        return int(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum())

    net = get_vgg("relu5_1", "max", "", "cpu")
    layers = ["relu4_1", "relu5_1"]
    with torch.no_grad():
        painting = net(im.to_tensor(_picture(160, 160, 1)), layers)
    x = im.to_tensor(_picture(160, 106, 0)).requires_grad_(True)
    feats = net(x, layers)
    for k in layers:
        target = blend_moments([feature_moments(painting[k])], [1.0])
        (grad,) = torch.autograd.grad(w2_loss(feats[k], target), feats[k])
        assert grad.abs().sum() > 0
        assert denormals(target.cov_sqrt) == 0 and denormals(grad) == 0
        # Their products: a sum can cancel into a denormal now and then (0 alone, 54 of 262144 in
        # one full-suite run), not thousands (960 and 4518 before).
        product = target.cov_sqrt @ target.cov_sqrt
        assert denormals(product) < 1e-3 * product.numel()


def test_w2_blend_is_the_mixtures_moments(feats):
    # The moments of two paintings blended 1:1 are those of the union of their positions.
    from painterly.losses import blend_moments, feature_moments, w2_loss

    a, b, x = feats[:1], feats[1:], feats[:1] * 0.5
    blended = blend_moments([feature_moments(a), feature_moments(b)], [2.0, 2.0])
    union = blend_moments([feature_moments(torch.cat([a, b], dim=2))], [1.0])
    torch.testing.assert_close(blended.mean, union.mean)
    torch.testing.assert_close(blended.cov, union.cov)
    torch.testing.assert_close(w2_loss(x, blended), w2_loss(x, union))
    with pytest.raises(ValueError, match="not all be zero"):
        blend_moments([feature_moments(a)], [0.0])


def slow_sliced(x: torch.Tensor, s: torch.Tensor, proj: torch.Tensor) -> float:
    """Per direction, sort both projections and average the squared differences; sum / C."""
    a, b = _positions(x)[0], _positions(s)[0]
    total = 0.0
    for k in range(proj.shape[1]):
        pa = sorted(float(v) for v in a @ proj[:, k])
        pb = sorted(float(v) for v in b @ proj[:, k])
        total += sum((u - v) ** 2 for u, v in zip(pa, pb)) / len(pa)
    return total / a.shape[1]


def test_sliced_loss_is_the_sliced_wasserstein_distance(feats):
    from painterly.losses import sliced_loss, sliced_projections, sliced_sorted

    x, s = feats[:1], feats[1:]
    proj = sliced_projections(3, seed=0).double()
    torch.testing.assert_close(proj.norm(dim=0), torch.ones(3, dtype=torch.float64))  # unit directions
    torch.testing.assert_close(proj, sliced_projections(3, seed=0).double())  # fixed by the seed
    target = sliced_sorted(s, proj)
    assert float(sliced_loss(x, target, proj)) == pytest.approx(slow_sliced(x, s, proj), rel=1e-9)
    assert float(sliced_loss(s, target, proj)) == 0.0
    # The painting may have another number of positions: its quantiles are resampled.
    s_big = s.repeat_interleave(2, dim=3)  # every value twice: the same distribution
    assert float(sliced_loss(s, sliced_sorted(s_big, proj), proj)) == pytest.approx(0.0, abs=1e-12)


def test_sliced_blend_is_a_sample_of_the_mixture(feats):
    from painterly.losses import blend_sliced, sliced_loss, sliced_projections, sliced_sorted

    a, b = feats[:1], feats[1:]
    proj = sliced_projections(3, seed=1).double()
    blended = blend_sliced([sliced_sorted(a, proj), sliced_sorted(b, proj)], [1.0, 1.0])
    union = sliced_sorted(torch.cat([a, b], dim=3), proj)
    torch.testing.assert_close(blended, union)  # equal weights, equal sizes: exactly the union
    # Weight 0 leaves a painting out.
    torch.testing.assert_close(blend_sliced([sliced_sorted(a, proj), sliced_sorted(b, proj)], [1.0, 0.0]),
                               sliced_sorted(a, proj))  # fmt: skip
    x = torch.zeros_like(a)
    assert float(sliced_loss(x, blended, proj)) > 0


def test_style_distance_dispatches_each_kind(feats):
    from painterly.losses import STYLE_LOSS_SCALE, blend_statistics, sliced_projections, style_distance, style_statistic

    x, s = feats[:1], feats[1:]
    proj = sliced_projections(3, seed=0).double()
    for kind in ("gram", "w2", "sliced"):
        target = blend_statistics([style_statistic(s, kind, projections=proj)], [1.0], kind)
        assert float(style_distance(s, target, kind, projections=proj)) == pytest.approx(0.0, abs=1e-9)
        assert float(style_distance(x, target, kind, projections=proj)) > 0
        assert STYLE_LOSS_SCALE[kind] > 0
    raw = blend_statistics([style_statistic(s, "gram", normalize=False)], [1.0], "gram")
    torch.testing.assert_close(style_distance(x, raw, "gram", normalize=False),
                               style_loss(gram_matrix(x, False), gram_matrix(s, False), "mean"))  # fmt: skip


def test_default_layer_weights_per_loss():
    from painterly.losses import default_layer_weights

    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert default_layer_weights(layers, "gram") == (0.2,) * 5  # Gatys et al.: equal
    w = default_layer_weights(layers, "w2")
    assert w == default_layer_weights(layers, "sliced")
    assert sum(w) == pytest.approx(1.0)
    assert [a / b for a, b in zip(w, w[1:])] == pytest.approx([4.0] * 4)  # 256 : 64 : 16 : 4 : 1
    assert default_layer_weights(("conv3_1", "relu3_2"), "w2") == pytest.approx((0.5, 0.5))  # same block
    assert default_layer_weights((), "w2") == ()
