"""voxshift: a voice service for chat agents with a safe path off a legacy voice stack."""

__version__ = "0.1.0"
