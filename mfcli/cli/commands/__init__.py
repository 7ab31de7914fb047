"""One module per command. Each defines ``command`` (a click.Command) and imports only click
and mfcli.cli helpers at module level; heavy imports happen inside the command."""
