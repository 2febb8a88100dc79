"""ganforge: train, stabilise, evaluate and diagnose Generative Adversarial Networks."""

__version__ = "0.1.0"
