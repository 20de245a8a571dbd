"""One short module per action, values in and values out.

``restore`` and ``purge`` take a lifecycle ``Context`` and return a ``FlowResult``
(``runs/lifecycle.py``). ``reconcile`` (plan, run, verify), ``resume`` and ``apply`` take a
``RunContext`` and fill a ``RunRecord`` for the report (``runs/runner.py``), from the shared
steps in ``gates`` (the safety judge), ``listing`` (inventory, snapshot, backup), ``send``
(the executor, journaled) and ``verify`` (earlier deletes read back).
"""
