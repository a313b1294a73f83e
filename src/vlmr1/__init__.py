"""vlmr1: R1-style GRPO reinforcement learning for vision-language models, built on TRL."""

__version__ = "0.1.0"
