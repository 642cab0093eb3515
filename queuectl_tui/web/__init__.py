"""`queuectl web`: the console in a browser, one console process per open page.

`tokens.py` reads and checks the secrets a page must show (no web library);
`server.py` is the aiohttp application around textual-serve's page and
process plumbing, imported only by `queuectl web` (textual-serve is the
optional `queuectl[web]` extra). Each page's console is `queuectl tui` in a
child process: who opened it and whether it is read-only reach it through its
environment, never its command line.
"""
