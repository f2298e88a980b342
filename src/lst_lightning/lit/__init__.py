"""The Lightning layer: module, datamodule, optimiser recipe and the FSDP strategy."""
