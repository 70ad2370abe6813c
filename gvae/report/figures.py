"""The report's pictures as PNG bytes: training curves, image grids, the latent scatter.

Figures are built on :class:`matplotlib.figure.Figure` objects rendered by the Agg backend, never through
``pyplot``: pyplot keeps global state and may pick an interactive backend, and a report is written from
scripts, tests and headless machines alike.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from gvae.data.grids import grid_array, grid_picture

# Curves drawn together, by figure. A key that metrics.jsonl has but no group names lands in "other".
CURVE_GROUPS: dict[str, tuple[str, ...]] = {
    "losses": ("total", "nll", "kl", "bpd", "adv", "feature", "label", "d_loss"),
    "discriminator": ("d_real", "d_recon", "d_fake"),
    "optimisation": ("grad_norm_g", "grad_norm_d", "lr", "beta", "input_noise", "images_per_s"),
}
# The diagnostics of gvae.train.diagnostics, several curves to a panel so that they compare at a glance.
DIAGNOSTIC_PANELS: dict[str, tuple[str, ...]] = {
    "discriminator accuracy": ("d_acc_real", "d_acc_recon", "d_acc_fake"),
    "gradient on the generator's last layer": ("gnorm_nll", "gnorm_adv", "gnorm_feature", "gnorm_label"),
    "gradient on the encoder's last layer": ("gnorm_enc_nll", "gnorm_enc_kl", "gnorm_enc_adv", "gnorm_enc_feature",
                                             "gnorm_enc_label"),
    "active units": ("active_units",),
    "aggregate posterior vs N(0, I)": ("agg_mean_abs", "agg_var", "agg_kl"),
    # conditional models: label_share, and label_acc with loss.label_classifier (both fractions)
    "labels: share of the variation they decide, share the classifier agrees with": ("label_share", "label_acc"),
}
_LOG_SCALE = {"total", "nll", "grad_norm_g", "grad_norm_d",  # span orders of magnitude early in a run
              "gradient on the generator's last layer", "gradient on the encoder's last layer",
              "aggregate posterior vs N(0, I)"}
_COLUMNS = 3
_DPI = 100


def figure_png(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def image_png(images: torch.Tensor, nrow: int, scale: int = 1) -> bytes:
    """A grid of ``images`` [N, C, H, W] in [0, 1], ``nrow`` per row, 2 px white gaps, enlarged ``scale`` times.

    Enlarging with nearest-neighbour keeps 64 px images legible in a browser without blurring their pixels.
    """
    return picture_png(grid_picture(grid_array(images, nrow), grey=images.shape[1] == 1), scale)


def picture_png(picture: Image.Image, scale: int = 1) -> bytes:
    """``picture`` enlarged ``scale`` times with nearest-neighbour (pixels stay sharp), as PNG bytes."""
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def group_curves(records: list[dict]) -> dict[str, list[str]]:
    """Which logged keys go in which figure, in :data:`CURVE_GROUPS` order; keys never logged are left out."""
    logged = {key for record in records for key, value in record.items()
              if key != "step" and isinstance(value, (int, float))}
    groups = {name: [key for key in keys if key in logged] for name, keys in CURVE_GROUPS.items()}
    named = {key for groups in (CURVE_GROUPS, DIAGNOSTIC_PANELS) for keys in groups.values() for key in keys}
    groups["other"] = sorted(logged - named)
    return {name: keys for name, keys in groups.items() if keys}


def curves_png(records: list[dict], keys: list[str]) -> bytes:
    """One small panel per key of ``records`` (metrics.jsonl lines) against the step, :data:`_COLUMNS` a row."""
    return panels_png(records, {key: (key,) for key in keys})


def diagnostic_panels(records: list[dict]) -> dict[str, tuple[str, ...]]:
    """:data:`DIAGNOSTIC_PANELS` with only the keys ``records`` logged; panels left empty are dropped."""
    logged = {key for record in records for key in record}
    panels = {title: tuple(key for key in keys if key in logged) for title, keys in DIAGNOSTIC_PANELS.items()}
    return {title: keys for title, keys in panels.items() if keys}


def panels_png(records: list[dict], panels: dict[str, tuple[str, ...]]) -> bytes:
    """One small panel per title of ``panels``, its keys' curves against the step, :data:`_COLUMNS` a row.

    A panel of one key is drawn in one colour and titled by the key; a panel of several has a legend.
    """
    rows = math.ceil(len(panels) / _COLUMNS)
    fig = Figure(figsize=(4.2 * min(len(panels), _COLUMNS), 2.6 * rows))
    for index, (title, keys) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, _COLUMNS, index + 1)
        positive = True
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and "step" in r]
            steps, values = zip(*points, strict=True) if points else ((), ())
            values = np.asarray(values, dtype=float)
            ax.plot(steps, values, lw=1.2, label=key, **({"color": "#1f5f99"} if len(keys) == 1 else {}))
            positive = positive and bool(values.size) and bool(np.all(values[np.isfinite(values)] > 0))
        if title in _LOG_SCALE and positive:
            ax.set_yscale("log")
        if len(keys) > 1:
            ax.legend(fontsize=7, loc="best")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def project_2d(codes: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """Codes [N, L] -> ([N, 2], axis labels): the codes themselves for L <= 2, else their top two principal axes.

    The principal axes come from an SVD of the centred codes (exact, and cheap for the few thousand codes a
    report holds); the labels give each axis's share of the variance, so a flat scatter reads as such.
    """
    codes = codes.double()
    if codes.shape[1] == 1:
        return torch.cat([codes, torch.zeros_like(codes)], 1), ["z[0]", ""]
    if codes.shape[1] == 2:
        return codes, ["z[0]", "z[1]"]
    centred = codes - codes.mean(0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    share = singular**2 / (singular**2).sum().clamp_min(1e-300)
    return centred @ vh[:2].T, [f"PC{i + 1} ({100 * share[i]:.0f}% of variance)" for i in range(2)]


def scatter_png(points: torch.Tensor, labels: torch.Tensor, label_names: list[str], axes: list[str]) -> bytes:
    """Points [N, 2] coloured by integer label (-1: unlabelled, grey), with a legend of ``label_names``."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
    points, labels = points.cpu().numpy(), labels.cpu().numpy()
    for value in sorted(set(labels.tolist())):
        chosen = labels == value
        name = label_names[value] if 0 <= value < len(label_names) else ("no label" if value < 0 else str(value))
        colour = "#bbbbbb" if value < 0 else palette[value % len(palette)]
        ax.scatter(points[chosen, 0], points[chosen, 1], s=12, alpha=0.75, color=colour, label=name, lw=0)
    ax.set_xlabel(axes[0], fontsize=9)
    ax.set_ylabel(axes[1], fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    fig.tight_layout()
    return figure_png(fig)
