"""How a canaryflow service that is a process of its own (the demo app, the load tester) serves its app.

It sits below the adapters, beside the engine and the clock, so that both services, which may not import each
other, start the same way. It must not import any other canaryflow package. (A runtime serving an app inside
its own event loop uses ``control.web.serving`` instead.)
"""
