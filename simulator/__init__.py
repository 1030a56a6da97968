"""A local Bitrix24 portal: the REST API's URLs, envelopes, quirks, limits and errors, over generated data.

A separate program (`python -m b24wh_simulator`, `b24wh simulator`); the pipeline only ever talks to it over
HTTP. `simulator.client` starts it and drives its control interface from Python.
"""
