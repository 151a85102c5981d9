"""The W2 loss's tr((S_s^1/2 S S_s^1/2)^1/2) and its gradient: eigendecomposition (what the engine
does) against coupled Newton-Schulz iterations in float32 (matrix products only, what a GPU does
fastest), on the real features of a 512 px picture and of its photo, at each style layer.

    python -m benchmarks.trace_sqrt   # after `python -m benchmarks.pairs --size 512 --candidates default --pairs 6`

Prints, per layer and iteration count, the relative error of the trace and the cosine and
relative size of the difference of the gradient with respect to the covariance (benchmarks/RESULTS.md,
"On a GPU"). Runs on the CPU.
"""

import torch
from PIL import Image
from painterly import images as im
from painterly.vgg import get_vgg
from painterly.losses import feature_moments, W2Target

torch.manual_seed(0)
net = get_vgg("relu5_1")
layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
from benchmarks.runner import OUT, SHARED_IMAGES

sh = f"{SHARED_IMAGES}/"


def feats(path, size=512):
    img = Image.open(path).convert("RGB")
    img = img.resize((size, round(size * img.height / img.width)))
    with torch.no_grad():
        return net(im.to_tensor(img), layers)


S = feats(sh + "style_starry_night.jpg")
X = feats(str(OUT / "pairs/512/default/chelsea__starry_night/output.png"))
P = feats(sh + "content_chelsea.jpg")


def ns(a, k):
    c = a.norm(dim=(-2, -1), keepdim=True)
    y = a / c
    z = torch.eye(a.shape[-1]).expand_as(a).clone()
    I3 = 3 * torch.eye(a.shape[-1])
    for _ in range(k):
        t = 0.5 * (I3 - z @ y)
        y = y @ t
        z = t @ z
    return c.sqrt().squeeze(-1).squeeze(-1) * y.diagonal(dim1=-2, dim2=-1).sum(-1), 0.5 * z / c.sqrt()


for name, F in (("output", X), ("photo", P)):
    for l in layers:
        t = W2Target(*feature_moments(S[l]))
        m, s2 = feature_moments(F[l])
        cov = s2 - m.unsqueeze(-1) * m.unsqueeze(-2)
        A = t.cov_sqrt @ cov @ t.cov_sqrt
        vals, vecs = torch.linalg.eigh(A.double())
        vals = vals.clamp_min(0)
        tr = vals.sqrt().sum(-1)
        floor = vals.amax(-1, keepdim=True) * 1e-7
        G = (vecs * (0.5 / vals.clamp_min(floor).sqrt()).unsqueeze(-2)) @ vecs.transpose(-1, -2)
        gcov = t.cov_sqrt.double() @ G @ t.cov_sqrt.double()
        out = []
        for k in (10, 15, 20, 25, 30):
            trn, Gn = ns(A.float(), k)
            gn = t.cov_sqrt.double() @ Gn.double() @ t.cov_sqrt.double()
            cos = (gn * gcov).sum() / (gn.norm() * gcov.norm())
            out.append(
                f"k{k}: tr {float((trn - tr) / tr):+.1e} cos {float(cos):.5f} |d|/|g| {float((gn - gcov).norm() / gcov.norm()):.1e}"
            )
        print(name, l, A.shape[-1], f"cond {float(vals.max() / vals[vals > 0].min()):.1e}", " | ".join(out))
