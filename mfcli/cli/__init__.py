"""The mfcli command line: a thin click layer over the core (see mfcli.cli.main)."""
