"""atpctl: ATP's command-line client. It talks to a server's REST API and needs none of the
server's code."""
