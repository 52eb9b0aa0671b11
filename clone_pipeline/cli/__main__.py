"""`python -m clone_pipeline.cli`, as the tests and benchmarks start the command."""

from clone_pipeline.cli import main

main()
