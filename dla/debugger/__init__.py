"""STEP/CROSS debugging: commands that return data; the terminal and the web only render.

* ``commands`` — one command line as a typed command (the table, aliases, read-only set,
  "did you mean", numbers, weight indices, edits);
* ``stepper`` — ``Stepper.execute(command)`` runs it on a ``dla.session.Session`` and returns a
  result; ``views`` — the current layer's tensors as ``stats``/``show`` present them, and the
  pictures (shared with the web page, so both draw the same bytes);
* ``results`` — the results: frozen dataclasses with ``data()`` (JSON-able, no path of this
  machine) for a face on another machine;
* ``text`` — results as the terminal prints them; ``repl`` — the line loop of ``dla step``.

The web page (``dla.web.stepping``) parses with ``commands``, runs with ``Stepper`` and sends
``Result.data()`` to the browser, which renders it (``dla/web/static/step.js``).
"""
