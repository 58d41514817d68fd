"""The demo ``make run`` starts with: wiring that knows every app, so it lives in ``cot``, not in one of them."""
