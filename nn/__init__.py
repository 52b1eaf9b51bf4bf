"""nn: neural networks built from autodiff Values (neurons, layers, MLPs, losses, optimizers)."""
