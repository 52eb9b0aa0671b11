"""Voice: a person's recordings checked and measured (decoding, quality, forced alignment,
the speaker profile), joined with their writing into voice-conditioned training examples
(integration), and speech in a voice matched to theirs (synthesis: prosody, not cloning)."""
