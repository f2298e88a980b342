"""Continue a prompt with a trained checkpoint: ``python -m lst_lightning.sample --ckpt PATH ...``.

The prompt is a document without its EOS: optional text, optional speech units, then an optional
``<t>`` / ``<s>`` marker that asks for the continuation's modality (``--then speech`` after a text
prompt is a TTS-style request, ``--then text`` after units an ASR-style one). Decoding uses the
batched KV-cache generator (:func:`lst_lightning.model.batch_generate.generate_batch`): LST's global
model steps once per closed static patch, so the printout reports global steps next to tokens.
``--num-samples N`` draws N continuations of the prompt in one batch; ``--restrict`` keeps the
continuation in the ``--then`` modality (unit ids, or text ids, plus EOS).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from .data.vocab import SpeechSpan, TextSpan, TokenSpace
from .eval.__main__ import load_checkpoint
from .model.batch_generate import generate_batch
from .model.generate import StaticPatchRule


def build_prompt(
    space: TokenSpace, text: str | None, units: Sequence[int], then: str | None
) -> list[int]:
    """``BOS [<t> text] [<s> units] [<t>|<s>]``: an open document for the model to continue."""
    spans: list[TextSpan | SpeechSpan] = []
    if text:
        spans.append(TextSpan(text))
    if units:
        spans.append(SpeechSpan(tuple(units)))
    ids = space.encode_document(spans)[:-1]  # drop EOS: the document goes on
    if then == "speech":
        ids.append(space.speech_id)
    elif then == "text":
        ids.append(space.text_id)
    return ids


def final_mode(space: TokenSpace, ids: Sequence[int]) -> int | None:
    """The ``<t>`` / ``<s>`` id of the span a sequence ends in (``None`` before any marker)."""
    markers = [i for i in map(int, ids) if i in (space.text_id, space.speech_id)]
    return markers[-1] if markers else None


def describe(space: TokenSpace, ids: Sequence[int], mode: int | None = None) -> list[str]:
    """Readable spans of a (possibly unfinished or malformed) token sequence, one line each;
    ``mode`` is the span the sequence starts inside (for a continuation)."""
    lines: list[str] = []
    run: list[int] = []

    def close() -> None:
        if mode == space.text_id and run:
            lines.append(f"[text] {space.decode_text(run)}")
        elif mode == space.speech_id and run:
            units = space.decode_units(run)
            lines.append(f"[speech] {len(units)} units: {' '.join(map(str, units))}")

    names = {space.bos_id: "<bos>", space.eos_id: "<eos>", space.pad_id: "<pad>"}
    for i in map(int, ids):
        if i in (space.text_id, space.speech_id):
            close()
            mode, run = i, []
        elif (
            mode == space.text_id
            and space.is_text(i)
            or mode == space.speech_id
            and space.is_unit(i)
        ):
            run.append(i)
        else:
            close()
            mode, run = None, []
            lines.append(names.get(i, f"<id {i}>"))
    close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by lst-lightning fit")
    parser.add_argument("--text", help="text prompt")
    parser.add_argument("--units", help="speech prompt: space-separated unit ids (0..num_units-1)")
    parser.add_argument(
        "--then",
        choices=["speech", "text", "free"],
        default="free",
        help="modality to continue in (default: the model chooses)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    parser.add_argument(
        "--top-p", type=float, help="sample from the smallest set of probability >= p (nucleus)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds sampling when temperature > 0")
    parser.add_argument(
        "--num-samples", type=int, default=1, help="continuations to draw, in one batch"
    )
    parser.add_argument(
        "--restrict",
        action="store_true",
        help="keep the continuation in the --then modality (its ids and EOS only)",
    )
    parser.add_argument("--data-dir", help="corpus folder (default: the checkpoint's)")
    parser.add_argument("--out", help="write the continuation's speech units as a 16 kHz WAV here")
    parser.add_argument(
        "--vocoder",
        help="for --out: a .pt Griffin-Lim vocoder or a unit HiFi-GAN folder "
        "(default: the corpus's codebook vocoder)",
    )
    args = parser.parse_args(argv)
    try:
        units = [int(u) for u in args.units.split()] if args.units else []
        if not args.text and not units:
            raise ValueError("give a prompt: --text and/or --units")
        if args.max_new_tokens < 1 or args.temperature < 0:
            raise ValueError("need --max-new-tokens >= 1 and --temperature >= 0")
        if args.num_samples < 1:
            raise ValueError(f"need --num-samples >= 1, got {args.num_samples}")
        if args.num_samples > 1 and args.temperature == 0:
            raise ValueError("--num-samples > 1 needs --temperature > 0 (greedy gives one)")
        if args.num_samples > 1 and args.out:
            raise ValueError("--out writes one continuation: use it with --num-samples 1")
        if args.restrict and args.then == "free":
            raise ValueError("--restrict needs --then speech or --then text")
        loaded = load_checkpoint(args.ckpt, args.data_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"lst_lightning.sample: {e}", file=sys.stderr)
        return 2
    space, model = loaded.space, loaded.module.net.eval()
    try:
        prompt = build_prompt(space, args.text, units, None if args.then == "free" else args.then)
    except ValueError as e:
        print(f"lst_lightning.sample: bad prompt: {e}", file=sys.stderr)
        return 2
    rule = None
    if loaded.patch_size is not None:
        rule = StaticPatchRule(
            loaded.patch_size, (space.unit_offset, space.vocab_size), space.speech_id
        )
    allowed = None
    if args.restrict:
        if args.then == "speech":
            allowed = range(space.unit_offset, space.vocab_size)
        else:
            allowed = range(space.text_vocab_size)
    try:
        outs = generate_batch(
            model,
            [prompt] * args.num_samples,
            args.max_new_tokens,
            rule=rule,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=torch.Generator().manual_seed(args.seed),
            eos_id=space.eos_id,
            allowed_ids=allowed,
        )
    except ValueError as e:
        print(f"lst_lightning.sample: {e}", file=sys.stderr)
        return 2
    print("prompt:")
    print("\n".join(f"  {line}" for line in describe(space, prompt)))
    for i, out in enumerate(outs):
        print("continuation:" if len(outs) == 1 else f"continuation {i + 1}/{len(outs)}:")
        continuation = describe(space, out.ids, final_mode(space, prompt))
        print("\n".join(f"  {line}" for line in continuation))
        fed = len(prompt) + len(out.ids) - 1
        end = "stopped at EOS" if out.stopped_at_eos else "hit --max-new-tokens"
        print(
            f"{len(out.ids)} new tokens ({end}); {out.global_steps} global steps for {fed} tokens "
            f"fed ({out.prompt_global_steps} while reading the prompt), "
            f"{out.decoder_steps} decoder steps"
        )
    out = outs[0]
    if args.out:
        return write_audio(space, out.ids, args.out, args.vocoder, loaded.data_dir)
    return 0


def write_audio(space: TokenSpace, ids: Sequence[int], out: str, vocoder, data_dir) -> int:
    """Vocode the speech tokens of ``ids`` (every speech span, in order) into the WAV ``out``."""
    from .downstream.listen import load_vocoder, speak_to_wav

    speech = [int(i) for i in ids if space.is_unit(int(i))]
    if not speech:
        print(
            "lst_lightning.sample: the continuation has no speech units to write (--then speech)",
            file=sys.stderr,
        )
        return 1
    units = space.decode_units(speech)
    try:
        path = speak_to_wav(load_vocoder(vocoder, data_dir), list(units), out)
    except (ValueError, FileNotFoundError) as e:
        print(f"lst_lightning.sample: cannot write audio: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(units)} units ({len(units) / 25:.2f} s of audio) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
