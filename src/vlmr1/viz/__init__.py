"""Drawing answers over images (``vlmr1 draw``): the task says what to draw (``Task.overlay``, original pixels),
this package draws it."""

from vlmr1.viz.draw import make_grid, render_overlay, render_row

__all__ = ["make_grid", "render_overlay", "render_row"]
