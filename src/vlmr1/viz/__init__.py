"""Drawing answers over images: contours and boxes against the ground truth (``vlmr1 draw``)."""

from vlmr1.viz.draw import make_grid, render_overlay, render_row

__all__ = ["make_grid", "render_overlay", "render_row"]
