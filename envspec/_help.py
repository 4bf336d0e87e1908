"""The top-level ``envspec --help``, as click renders it for a terminal of 80 columns or
more: the console script prints it without importing click. Generated; refresh with
``ENVSPEC_UPDATE_GOLDEN=1 pytest tests/test_cli.py`` (a test fails when it is stale)."""

TOP_LEVEL = """\
Usage: envspec [OPTIONS] COMMAND [ARGS]...

  One typed spec for development, staging and production.

  envspec validate              check the spec (pre-commit)
  envspec render --all          write every artifact to build/
  envspec render --env prod --check   fail when generated files are stale (CI)

Options:
  --version   Show the version and exit.
  --debug     Show a traceback for internal errors.
  -h, --help  Show this message and exit.

Commands:
  diff      Every difference between two environments: expected, declared...
  explain   Where variable NAME comes from in each environment and which...
  init      Create a spec: a starter, or one imported from a compose file...
  parity    The parity matrix of every environment and its score: the...
  render    Write the artifacts of one or more environments.
  schema    Print the spec's JSON Schema (for editors; also under schema/).
  validate  Load, type-check, parity-check and render the spec in memory;...
  var       Add, change or remove a variable in the spec, in place...
  verify    Compare a deployment's live objects with what envspec renders...
"""
