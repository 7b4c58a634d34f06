"""Can the landing zone be reached? From this host (`host_check`) and from each running cluster (`probe`).

`verify` runs both for one environment; commands print its result. Neither ever shows the
SAS token or a URL that carries it.
"""
