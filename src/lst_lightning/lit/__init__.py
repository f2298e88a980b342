"""The Lightning layer: module, datamodule and optimiser recipe."""
