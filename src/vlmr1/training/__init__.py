"""Training: the config (TRL's parser; pure reading, then one process set-up step), the wiring of a run (``setup``:
data and rewards first, then the model through ``vlmr1.models.loading``), and ``trl.GRPOTrainer``'s extension in
named overrides (shared-prefix forward and generation, DeepSpeed rank sync, vLLM inputs)."""
