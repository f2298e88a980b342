"""``python -m lst_lightning fit --config experiments/tiny_lst.yaml``."""

from .cli import main

main()
