"""ganworks: Improved-GAN (Salimans et al., 2016) and SN-GAN (Miyato et al., 2018) in plain PyTorch."""

__version__ = "0.1.0"
