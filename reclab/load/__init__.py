"""Load: locust processes replaying the request stream against one server, and what they recorded."""
