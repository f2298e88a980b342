"""``lst-lightning export --ckpt X --out DIR``: a checkpoint as a Hugging Face style folder.

The folder (:mod:`lst_lightning.hub.pretrained`) loads back with
``PretrainedSpeechTextModel.from_pretrained(DIR)``; a baseline's also with ``transformers``'
``AutoModelForCausalLM.from_pretrained(DIR)``. Publish it with
``PretrainedSpeechTextModel.from_pretrained(DIR).push_to_hub("user/name")`` or
``huggingface-cli upload user/name DIR``.
"""

from __future__ import annotations

import argparse
import sys

from .pretrained import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lst-lightning export", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint written by lst-lightning fit")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument(
        "--data-dir", default=None, help="corpus (only for checkpoints without embedded tokenizers)"
    )
    args = parser.parse_args(argv)
    try:
        out = export_checkpoint(args.ckpt, args.out, args.data_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"lst-lightning export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
