"""A person's memories, searchable: passages of their redacted material (``passages``) in a
hybrid lexical and dense index kept beside their data (``index``), the memories one chat turn
is given or the honest abstention when none fits (``grounding``), and fidelity on held-out
fact sheets (``fidelity``)."""
