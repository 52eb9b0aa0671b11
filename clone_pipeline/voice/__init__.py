"""Voice: audio decoding and inspection (analysis, alignment and synthesis build on this)."""
