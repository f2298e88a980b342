"""Corpora the kit builds itself, offline, in the layout the training stream reads.

- :mod:`.embedded`: the default corpus, Jane Austen (:mod:`.textsource`) read aloud by espeak-ng
  (:mod:`.tts`) with engine word timings and offline log-mel units.
- :mod:`.synthetic`, :mod:`.build`: the small generated corpus (no system packages; seconds).
"""
