"""A person's memories, searchable: passages of their redacted material (``passages``) in a
hybrid lexical and dense index kept beside their data (``index``)."""
